namespace Grpc.Backup.Nbd.Internal;

/// <summary>Wire constants of the NBD protocol (doc/proto.md in the NBD project).</summary>
internal static class NbdProtocol
{
    /// <summary>"NBDMAGIC": first 8 bytes of every handshake.</summary>
    public const ulong InitMagic = 0x4e42444d41474943;

    /// <summary>"IHAVEOPT": announces newstyle negotiation and prefixes every option request.</summary>
    public const ulong OptionMagic = 0x49484156454F5054;

    /// <summary>The magic oldstyle servers send instead of IHAVEOPT.</summary>
    public const ulong OldstyleMagic = 0x00420281861253;

    public const ulong OptionReplyMagic = 0x0003e889045565a9;
    public const uint RequestMagic = 0x25609513;
    public const uint SimpleReplyMagic = 0x67446698;
    public const uint StructuredReplyMagic = 0x668e33ef;

    public const ushort HandshakeFlagFixedNewstyle = 1 << 0;
    public const ushort HandshakeFlagNoZeroes = 1 << 1;
    public const uint ClientFlagFixedNewstyle = 1 << 0;
    public const uint ClientFlagNoZeroes = 1 << 1;

    public const ushort CommandFlagDf = 1 << 2;
    public const ushort CommandFlagReqOne = 1 << 3;

    public const ushort ReplyFlagDone = 1 << 0;

    /// <summary>Structured reply types with this bit set are errors, even unknown ones.</summary>
    public const ushort ReplyTypeErrorBit = 1 << 15;

    /// <summary>Option reply types with this bit set are errors (NBD_REP_ERR_*).</summary>
    public const uint OptionReplyErrorBit = 1u << 31;

    public const int RequestSize = 28;
    public const int SimpleReplySize = 16;
    public const int StructuredReplySize = 20;
    public const int OptionReplyHeaderSize = 20;

    /// <summary>Upper bound the protocol puts on every string (export names, messages, contexts).</summary>
    public const int MaxStringLength = 4096;

    /// <summary>
    /// Largest option reply we accept. Option replies are small (strings are capped at 4 KiB),
    /// so anything larger is a hostile or broken server trying to make us allocate.
    /// </summary>
    public const int MaxOptionReplyLength = 64 * 1024;

    /// <summary>Upper bound on the number of metadata contexts one connection negotiates.</summary>
    public const int MaxMetaContexts = 64;

    /// <summary>Largest READ/WRITE payload to use when the server does not say (the protocol's advice).</summary>
    public const int DefaultMaxPayload = 32 * 1024 * 1024;
}
