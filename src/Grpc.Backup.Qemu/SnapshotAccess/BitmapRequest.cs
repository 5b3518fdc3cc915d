namespace Grpc.Backup.Qemu;

/// <summary>What the provider asked for one device's dirty bitmap (protocol <c>IncrementalChoice</c>).</summary>
public enum BitmapRequest
{
    /// <summary>No bitmap: any existing one is removed and the backup is full.</summary>
    None,

    /// <summary>Create the bitmap, replacing any existing one. The backup is full.</summary>
    New,

    /// <summary>Use the existing bitmap for an incremental backup, or create one if it is missing or unusable.</summary>
    Use,
}
