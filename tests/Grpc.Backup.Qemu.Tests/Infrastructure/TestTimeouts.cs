namespace Grpc.Backup.Qemu.Tests.Infrastructure;

/// <summary>Bounds so that a regression shows up as a failed test, never as a hung run.</summary>
public static class TestTimeouts
{
    /// <summary>Whole-test limit in milliseconds (for <c>[Fact(Timeout = ...)]</c>).</summary>
    public const int Test = 120_000;

    /// <summary>How long a failure that must be prompt may take (the machine is shared and slow).</summary>
    public static readonly TimeSpan Prompt = TimeSpan.FromSeconds(10);
}
