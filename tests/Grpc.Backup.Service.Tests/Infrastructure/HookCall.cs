namespace Grpc.Backup.Service.Tests.Infrastructure;

/// <summary>One call of the test hook script.</summary>
internal sealed record HookCall(long TimeMs, string Phase, string Guest, string Storage, string Target, string LogFile, string Node);
