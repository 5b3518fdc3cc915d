using System.Globalization;

namespace Grpc.Backup.Nbd.Internal;

/// <summary>Human readable names for wire error numbers and commands, used in exception messages.</summary>
internal static class NbdErrno
{
    public static string Name(int errno) => errno switch
    {
        1 => "EPERM",
        5 => "EIO",
        12 => "ENOMEM",
        22 => "EINVAL",
        28 => "ENOSPC",
        75 => "EOVERFLOW",
        95 => "ENOTSUP",
        108 => "ESHUTDOWN",
        _ => string.Create(CultureInfo.InvariantCulture, $"errno {errno}"),
    };

    public static string Describe(int errno) => errno switch
    {
        1 => "operation not permitted",
        5 => "input/output error",
        12 => "cannot allocate memory",
        22 => "invalid argument",
        28 => "no space left on device",
        75 => "value too large",
        95 => "operation not supported",
        108 => "server is shutting down",
        _ => "unknown error",
    };

    public static string CommandName(NbdCommand command) => command switch
    {
        NbdCommand.Read => "READ",
        NbdCommand.Write => "WRITE",
        NbdCommand.Disconnect => "DISC",
        NbdCommand.Flush => "FLUSH",
        NbdCommand.Trim => "TRIM",
        NbdCommand.Cache => "CACHE",
        NbdCommand.WriteZeroes => "WRITE_ZEROES",
        NbdCommand.BlockStatus => "BLOCK_STATUS",
        _ => string.Create(CultureInfo.InvariantCulture, $"command {(int)command}"),
    };

    public static string OptionName(NbdOption option) => option switch
    {
        NbdOption.ExportName => "NBD_OPT_EXPORT_NAME",
        NbdOption.Abort => "NBD_OPT_ABORT",
        NbdOption.List => "NBD_OPT_LIST",
        NbdOption.StartTls => "NBD_OPT_STARTTLS",
        NbdOption.Info => "NBD_OPT_INFO",
        NbdOption.Go => "NBD_OPT_GO",
        NbdOption.StructuredReply => "NBD_OPT_STRUCTURED_REPLY",
        NbdOption.ListMetaContext => "NBD_OPT_LIST_META_CONTEXT",
        NbdOption.SetMetaContext => "NBD_OPT_SET_META_CONTEXT",
        _ => string.Create(CultureInfo.InvariantCulture, $"option {(uint)option}"),
    };
}
