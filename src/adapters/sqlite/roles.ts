/**
 * SQLite's statement sets: the shared ones as they are. Its writers take turns on one write lock
 * (`BEGIN IMMEDIATE`), so claims need no row locks and no `SKIP LOCKED`; it has no notifications
 * (consumers in other processes poll).
 */
import type { StoreRoles } from "../../store/roles.js";
import { sharedRoles } from "../shared/roles.js";

export const sqliteRoles: StoreRoles = sharedRoles("question");
