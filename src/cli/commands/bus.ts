import { userInfo } from "node:os";
import { groupPauses } from "../../bus/pause.js";
import type { CliCommand } from "../command.js";
import { table, timestamp } from "../table.js";

const USAGE = `Usage: patchbay bus <pause|resume|paused> [group] [options]

  pause  <group>   pause a consumer group in every process sharing the store
  resume <group>   resume it
  paused           list the paused groups

A paused group's messages wait in its queue (or the broker); every bus consuming it stops taking
new ones within its pausePollInterval (default 500 ms), and its handlers running finish. Nothing
is retried or dead-lettered for the pause. The pause is kept in the store until resumed.`;

/**
 * Who runs the command, for the pause's record: the user name, or the uid when it has none (a
 * container's uid without a passwd entry, where `userInfo()` throws and would fail the pause).
 */
function operator(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? "?"}`;
  }
}

/** `patchbay bus pause|resume|paused`: the paused consumer groups kept in the store. */
export const busCommand: CliCommand = {
  name: "bus",
  summary: "event bus consumer groups: pause, resume, list the paused ones",
  usage: USAGE,
  options: {},
  maxArgs: 2,
  async run(ctx) {
    const [action, group] = ctx.args;
    if (!action || !["pause", "resume", "paused"].includes(action)) {
      ctx.err(action ? `patchbay bus: unknown action ${JSON.stringify(action)}\n\n${USAGE}` : USAGE);
      return 2;
    }
    if (action !== "paused" && !group) {
      ctx.err(`patchbay bus ${action} <group>`);
      return 2;
    }
    const store = await ctx.store();
    try {
      const pauses = groupPauses(store);
      if (action === "paused") {
        const list = await pauses.list();
        if (ctx.flags.json) ctx.out(JSON.stringify(list));
        else if (list.length === 0) ctx.out("no paused groups");
        else {
          ctx.out(
            table(
              ["GROUP", "PAUSED SINCE (UTC)", "BY"],
              list.map((p) => [p.group, timestamp(p.pausedAt), p.by ?? "-"]),
            ),
          );
        }
        return 0;
      }
      const changed =
        action === "pause"
          ? await pauses.pause(group!, { by: `cli:${operator()}` })
          : await pauses.resume(group!);
      const state = action === "pause" ? "paused" : "resumed";
      if (ctx.flags.json) ctx.out(JSON.stringify({ group, [state]: true, changed }));
      else ctx.out(changed ? `group ${group} ${state}` : `group ${group} was already ${state}`);
      return 0;
    } finally {
      await store.close();
    }
  },
};
