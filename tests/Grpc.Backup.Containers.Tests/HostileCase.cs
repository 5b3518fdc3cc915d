namespace Grpc.Backup.Containers.Tests;

/// <summary>
/// One crafted archive: how to build it (given the host directory next to the target that must stay untouched), the
/// fragment of the message that must explain its refusal, and the options it is checked under.
/// </summary>
internal sealed record HostileCase(Func<string, byte[]> Build, string Expected, TarValidationOptions? Options = null);
