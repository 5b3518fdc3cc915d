using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Backup.Protocol.V1;

namespace Grpc.Backup.Tests.Contract;

/// <summary>
/// The v1 contract may only grow: compared with the released snapshot (protos/snapshots/backup.provider.v1.binpb, a
/// protoc descriptor set), nothing may be removed, renumbered, retyped, renamed, or change streaming or idempotency.
/// A release refreshes the snapshot: <c>protoc -I protos --descriptor_set_out=protos/snapshots/backup.provider.v1.binpb
/// protos/backup/provider/v1/*.proto</c>.
/// </summary>
public sealed class ContractStabilityTests
{
    private static readonly string SnapshotPath = Path.Combine(RepoPaths.Root, "protos", "snapshots", "backup.provider.v1.binpb");

    [Fact]
    public void The_contract_changed_only_additively_since_the_released_snapshot()
    {
        IReadOnlyList<string> problems = DescriptorComparer.FindBreakingChanges(Released(), Current());
        Assert.True(problems.Count == 0, "non-additive contract changes:\n" + string.Join('\n', problems));
    }

    [Fact]
    public void The_comparison_catches_removed_renumbered_retyped_and_restreamed_elements()
    {
        FileDescriptorSet released = Released();
        FileDescriptorSet broken = Current();
        FileDescriptorProto backup = broken.File.Single(f => f.Name.EndsWith("backup.proto", StringComparison.Ordinal));
        DescriptorProto init = backup.MessageType.Single(m => m.Name == "BackupInitRequest");
        init.Field.Remove(init.Field.Single(f => f.Name == "guest_name"));
        init.Field.Single(f => f.Name == "guest_id").Type = FieldDescriptorProto.Types.Type.Bytes;
        backup.Service[0].Method.Single(m => m.Name == "BackupVm").ClientStreaming = false;
        backup.Service[0].Method.Single(m => m.Name == "JobInit").Options.IdempotencyLevel = MethodOptions.Types.IdempotencyLevel.IdempotencyUnknown;
        FileDescriptorProto types = broken.File.Single(f => f.Name.EndsWith("types.proto", StringComparison.Ordinal));
        EnumDescriptorProto kinds = types.EnumType.Single(e => e.Name == "FdKind");
        kinds.Value.Remove(kinds.Value.Single(v => v.Name == "FD_KIND_PIPE"));

        IReadOnlyList<string> problems = DescriptorComparer.FindBreakingChanges(released, broken);

        Assert.Contains(problems, p => p.Contains("BackupInitRequest.guest_name", StringComparison.Ordinal) && p.Contains("removed", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("BackupInitRequest.guest_id", StringComparison.Ordinal) && p.Contains("changed type", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("BackupVm changed its request, response or streaming", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("JobInit changed its idempotency", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("FD_KIND_PIPE", StringComparison.Ordinal));
        Assert.Equal(5, problems.Count);
    }

    private static FileDescriptorSet Released() => FileDescriptorSet.Parser.ParseFrom(File.ReadAllBytes(SnapshotPath));

    /// <summary>The contract this build was generated from, as the same kind of descriptor set.</summary>
    private static FileDescriptorSet Current()
    {
        var set = new FileDescriptorSet();
        foreach (FileDescriptor file in new[] { TypesReflection.Descriptor, IdentityReflection.Descriptor, BackupReflection.Descriptor,
            RestoreReflection.Descriptor, RepositoryReflection.Descriptor })
        {
            // A round trip through bytes gives an independent, mutable copy.
            set.File.Add(FileDescriptorProto.Parser.ParseFrom(file.ToProto().ToByteArray()));
        }
        return set;
    }
}
