namespace Grpc.Backup.Nbd.Tests.Fuzzing;

/// <summary>
/// One transmission request the fuzzer sent, what the NBD protocol (and the guard's documented policy) allows as its
/// answer, and what its structured reply chunks delivered so far.
/// </summary>
internal sealed class FuzzRequest
{
    public const int EPERM = 1;
    public const int EIO = 5;
    public const int EINVAL = 22;
    public const int EOVERFLOW = 75;

    public required ushort Command { get; init; }

    public required ushort Flags { get; init; }

    public required ulong Cookie { get; init; }

    public required ulong Offset { get; init; }

    public required uint Length { get; init; }

    /// <summary>Whether success is a valid answer.</summary>
    public bool MaySucceed { get; init; }

    /// <summary>The errors a refusal may carry.</summary>
    public int[] Errors { get; init; } = [];

    /// <summary>Bytes of a READ delivered by data and hole chunks.</summary>
    public long Delivered { get; set; }

    /// <summary>Context ids of the BLOCK_STATUS chunks received.</summary>
    public HashSet<uint> Contexts { get; } = [];

    /// <summary>The error of an error chunk, when one came.</summary>
    public int Error { get; set; }

    /// <summary>The command's name (NBD_CMD_ without the prefix).</summary>
    public string Name => CommandName(Command);

    public override string ToString() =>
        $"{Name} (cookie {Cookie:x}, flags 0x{Flags:x}, offset {Offset}, length {Length})";

    private static string CommandName(ushort command) => command switch
    {
        RawNbdClient.CmdRead => "READ",
        RawNbdClient.CmdWrite => "WRITE",
        RawNbdClient.CmdDisconnect => "DISC",
        RawNbdClient.CmdFlush => "FLUSH",
        RawNbdClient.CmdTrim => "TRIM",
        RawNbdClient.CmdCache => "CACHE",
        RawNbdClient.CmdWriteZeroes => "WRITE_ZEROES",
        RawNbdClient.CmdBlockStatus => "BLOCK_STATUS",
        8 => "RESIZE",
        _ => "unknown command",
    };
}
