using Grpc.Backup.Protocol.V1;

namespace Grpc.Backup.Providers.Directory.Tests.Infrastructure;

/// <summary>One disk a simulated host backs up: its export and the bitmap mode it reports.</summary>
internal sealed record VolumeSpec(string Device, long Size, BitmapMode Mode, QemuNbdExport Export, string BitmapContext = "",
    uint ExtraConnections = 0);
