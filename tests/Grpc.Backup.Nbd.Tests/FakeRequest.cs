namespace Grpc.Backup.Nbd.Tests;

/// <summary>A transmission request as the fake server received it.</summary>
internal readonly record struct FakeRequest(uint Magic, ushort Flags, ushort Type, ulong Cookie, ulong Offset, uint Length);
