//! Migration: kvmon does not migrate; these commands answer as QEMU does
//! when no migration is under way.

crate::qapi_command! {
    /// Pause a migration.  Currently it only supports postcopy; kvmon has
    /// no migration, so it always fails as QEMU does outside postcopy.
    "migrate-pause" (allow_oob) => pub struct MigratePause {} -> ()
}
