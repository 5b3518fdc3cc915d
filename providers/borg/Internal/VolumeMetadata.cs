namespace Grpc.Backup.Providers.Borg.Internal;

/// <summary>One VM volume of an archive: the tar member <c>&lt;device&gt;.raw</c>, always a whole disk image.</summary>
internal sealed class VolumeMetadata
{
    public string Device { get; set; } = "";

    public long SizeBytes { get; set; }

    /// <summary>none, new or reuse: the host's bitmap mode this volume was stored with.</summary>
    public string BitmapMode { get; set; } = "new";

    /// <summary>For reuse: the borg archive whose image supplied the clean ranges.</summary>
    public string? Base { get; set; }

    public string MemberName => Device + ".raw";
}
