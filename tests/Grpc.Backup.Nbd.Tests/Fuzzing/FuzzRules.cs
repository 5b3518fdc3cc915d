namespace Grpc.Backup.Nbd.Tests.Fuzzing;

/// <summary>
/// The answers the NBD protocol allows a guarded export to give (doc/proto.md, and the guard's policy where the
/// protocol lets a server choose: writes EPERM, everything not advertised EINVAL, as <c>NbdGuardTests</c> asserts).
/// </summary>
internal static class FuzzRules
{
    public const ushort FlagFua = 1 << 0;
    public const ushort FlagDf = 1 << 2;
    public const ushort FlagReqOne = 1 << 3;
    public const ushort CmdResize = 8;

    private const int EPERM = FuzzRequest.EPERM;
    private const int EINVAL = FuzzRequest.EINVAL;
    private const int EOVERFLOW = FuzzRequest.EOVERFLOW;

    /// <summary>The request with its allowed answers, for a connection in the given state.</summary>
    public static FuzzRequest Expect(ushort command, ushort flags, ulong cookie, ulong offset, uint length, bool structured, bool contexts)
    {
        var inRange = offset <= FuzzEnvironment.DiskSize && length <= FuzzEnvironment.DiskSize - offset;
        var aligned = offset % FuzzEnvironment.Cluster == 0
            && (length % FuzzEnvironment.Cluster == 0 || offset + length == FuzzEnvironment.DiskSize);
        (bool MaySucceed, int[] Errors) answer = command switch
        {
            RawNbdClient.CmdRead when (flags & ~FlagDf) != 0 || ((flags & FlagDf) != 0 && !structured) => Fail(EINVAL),
            RawNbdClient.CmdRead when length > FuzzEnvironment.MaxRequestSize => Fail(EINVAL, EOVERFLOW),
            RawNbdClient.CmdRead when !inRange => Fail(EINVAL),

            // A server MAY refuse requests that break the advertised minimum block size; zero lengths are unspecified.
            RawNbdClient.CmdRead when length == 0 || !aligned => (true, [EINVAL]),
            RawNbdClient.CmdRead => (true, []),

            RawNbdClient.CmdBlockStatus when !structured || !contexts || (flags & ~FlagReqOne) != 0 => Fail(EINVAL),
            RawNbdClient.CmdBlockStatus when length == 0 || !inRange => Fail(EINVAL),
            RawNbdClient.CmdBlockStatus when offset % FuzzEnvironment.Cluster != 0 => (true, [EINVAL]),
            RawNbdClient.CmdBlockStatus => (true, []),

            RawNbdClient.CmdTrim when (flags & ~FlagFua) != 0 || length == 0 || !inRange => Fail(EINVAL),

            // FUA was not advertised: a server may refuse it or ignore it.
            RawNbdClient.CmdTrim when (flags & FlagFua) != 0 => (true, [EINVAL]),
            RawNbdClient.CmdTrim => (true, []),

            // Writes are refused as not permitted; a malformed one (any flag: none was advertised) may be refused as invalid first.
            RawNbdClient.CmdWrite or RawNbdClient.CmdWriteZeroes when flags != 0 || length == 0 || !inRange || length > FuzzEnvironment.MaxRequestSize =>
                Fail(EPERM, EINVAL, EOVERFLOW),
            RawNbdClient.CmdWrite or RawNbdClient.CmdWriteZeroes => Fail(EPERM),

            // FLUSH, CACHE and RESIZE were not advertised, and unknown commands are invalid.
            _ => Fail(EINVAL),
        };

        return new FuzzRequest
        {
            Command = command,
            Flags = flags,
            Cookie = cookie,
            Offset = offset,
            Length = length,
            MaySucceed = answer.MaySucceed,
            Errors = answer.Errors,
        };
    }

    private static (bool, int[]) Fail(params int[] errors) => (false, errors);
}
