namespace Grpc.Backup.Provider;

/// <summary>What the copy loop does with one range of a volume.</summary>
public enum ExtentAction
{
    /// <summary>Read it, store it, TRIM it.</summary>
    Copy,

    /// <summary>It reads as zero: store zeros without reading, TRIM it.</summary>
    Zero,

    /// <summary>Not part of this backup (clean in the dirty bitmap): neither read nor touched.</summary>
    Skip,
}
