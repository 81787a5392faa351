import type { CliCommand } from "../command.js";
import { busCommand } from "./bus.js";
import { consoleCommand } from "./console.js";
import { contractsCommand } from "./contracts.js";
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
  busCommand,
  sagaCommand,
  syncCommand,
  webhooksCommand,
  consoleCommand,
  contractsCommand,
  cdcCommand,
];
