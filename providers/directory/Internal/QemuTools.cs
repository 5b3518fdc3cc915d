namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>Where the QEMU tools are and where their private sockets go.</summary>
internal sealed class QemuTools(DirectoryRepositoryOptions options)
{
    public QemuImg Img { get; } = new(options.QemuImgPath);

    public string QemuImgPath => options.QemuImgPath;

    public string QemuNbdPath => options.QemuNbdPath;

    public string RuntimeDirectory => options.RuntimeDirectory;
}
