namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>A run of a read buffer that is all zero, or that holds data, as found by <see cref="ZeroScan"/>.</summary>
internal readonly record struct DataRun(int Start, int Length, bool IsZero);
