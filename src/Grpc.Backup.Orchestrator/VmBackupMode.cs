namespace Grpc.Backup.Orchestrator;

/// <summary>How a running VM is held for its backup, as vzdump defines the modes.</summary>
public enum VmBackupMode
{
    /// <summary>Live: the guest runs throughout; only the switch is quiesced (agent freeze, else a pause).</summary>
    Snapshot,

    /// <summary>The guest is paused from before setup until snapshot access is set up, then resumed.</summary>
    Suspend,

    /// <summary>
    /// A running guest is shut down cleanly (ACPI powerdown, with a timeout) and QEMU is kept alive paused; once snapshot
    /// access is set up the guest is reset and resumed, so it runs again while its data is read. A guest that is not
    /// running stays as it is.
    /// </summary>
    Stop,
}
