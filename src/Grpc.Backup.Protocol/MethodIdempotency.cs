using System.Collections.Frozen;
using Google.Protobuf.Reflection;
using Grpc.Backup.Protocol.V1;

namespace Grpc.Backup.Protocol;

/// <summary>
/// Which RPCs may be retried, read from the contract itself: every RPC in protos/ carries the standard
/// <c>idempotency_level</c> option, so the retry rule cannot drift from the documentation.
/// </summary>
public static class MethodIdempotency
{
    private static readonly FrozenDictionary<string, MethodOptions.Types.IdempotencyLevel> Levels = Build();

    /// <summary>The level declared for a full method name such as <c>/backup.provider.v1.Backup/JobInit</c>.</summary>
    public static MethodOptions.Types.IdempotencyLevel GetLevel(string fullMethodName) =>
        Levels.TryGetValue(fullMethodName, out var level) ? level : MethodOptions.Types.IdempotencyLevel.IdempotencyUnknown;

    /// <summary>True if repeating the call has the effect of one call, so a transport failure may be retried.</summary>
    public static bool IsIdempotent(string fullMethodName) =>
        GetLevel(fullMethodName) is MethodOptions.Types.IdempotencyLevel.Idempotent
            or MethodOptions.Types.IdempotencyLevel.NoSideEffects;

    /// <summary>Every method of the v1 contract with its level; used by tests and the conformance kit.</summary>
    public static IReadOnlyDictionary<string, MethodOptions.Types.IdempotencyLevel> All => Levels;

    private static FrozenDictionary<string, MethodOptions.Types.IdempotencyLevel> Build()
    {
        var levels = new Dictionary<string, MethodOptions.Types.IdempotencyLevel>(StringComparer.Ordinal);
        FileDescriptor[] files =
        [
            IdentityReflection.Descriptor, BackupReflection.Descriptor,
            RestoreReflection.Descriptor, RepositoryReflection.Descriptor,
        ];
        foreach (FileDescriptor file in files)
        {
            foreach (ServiceDescriptor service in file.Services)
            {
                foreach (MethodDescriptor method in service.Methods)
                {
                    var level = method.GetOptions()?.IdempotencyLevel ?? MethodOptions.Types.IdempotencyLevel.IdempotencyUnknown;
                    levels[$"/{service.FullName}/{method.Name}"] = level;
                }
            }
        }
        return levels.ToFrozenDictionary(StringComparer.Ordinal);
    }
}
