import type { CliCommand } from "../command.js";
import { cdcCommand } from "./cdc.js";
import { dlqCommand } from "./dlq.js";
import { sagaCommand } from "./saga.js";
import { statusCommand } from "./status.js";
import { healthCommand, migrateCommandDef, startCommand } from "./store.js";
import { syncCommand } from "./sync.js";
import { webhooksCommand } from "./webhooks.js";

/** Every `patchbay` command, in help order. A module adds its command here (one line). */
export const commands: CliCommand[] = [
  startCommand,
  migrateCommandDef,
  healthCommand,
  statusCommand,
  dlqCommand,
  sagaCommand,
  syncCommand,
  webhooksCommand,
  cdcCommand,
];
