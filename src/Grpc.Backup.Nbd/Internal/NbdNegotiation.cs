namespace Grpc.Backup.Nbd.Internal;

/// <summary>Everything the handshake settled that the transmission phase depends on.</summary>
internal sealed record NbdNegotiation(
    NbdExportInfo Export,
    bool StructuredReplies,
    IReadOnlyList<NbdMetaContext> MetaContexts);
