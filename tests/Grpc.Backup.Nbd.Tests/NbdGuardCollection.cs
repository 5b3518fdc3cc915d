namespace Grpc.Backup.Nbd.Tests;

/// <summary>
/// The guard's tests run one class at a time: the flood test bounds this process's RSS growth, which the fuzzer's
/// buffers running beside it would blur.
/// </summary>
[CollectionDefinition(Name)]
public sealed class NbdGuardCollection
{
    public const string Name = "NBD guard";
}
