import { readFileSync } from "node:fs";
import pg from "pg";

/**
 * CPU seconds (user + system) of the PostgreSQL backends serving connections named `app`
 * (`application_name`), read from /proc: the database's share of a row's cost.
 */
export async function backendCpuSeconds(url: string, app: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const { rows } = await c.query<{ pid: number }>(
    "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
    [app],
  );
  await c.end();
  let ticks = 0;
  for (const { pid } of rows) {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, "utf8");
      const x = f.slice(f.lastIndexOf(")") + 2).split(" ");
      ticks += Number(x[11]) + Number(x[12]);
    } catch {
      // the backend is gone
    }
  }
  return ticks / 100;
}
