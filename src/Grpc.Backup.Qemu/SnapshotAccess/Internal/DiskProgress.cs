namespace Grpc.Backup.Qemu.Internal;

/// <summary>
/// What setup has created for one disk, so that teardown undoes exactly that, in the required order,
/// whichever step failed. Teardown clears each flag once its step is undone.
/// </summary>
internal sealed class DiskProgress
{
    public bool FleecingFileCreated { get; set; }

    public bool FleeceNodeAdded { get; set; }

    /// <summary>The background bitmap was added and is not settled yet (it outlives a successful teardown until the commit).</summary>
    public bool RecordingBitmapAdded { get; set; }

    public bool CbwAdded { get; set; }

    public bool FilterSwitched { get; set; }

    public bool SnapshotNodeAdded { get; set; }

    public bool ThrottleGroupAdded { get; set; }

    public bool ThrottleNodeAdded { get; set; }

    public bool ExportAdded { get; set; }


}
