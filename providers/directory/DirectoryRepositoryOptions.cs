using System.Globalization;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Provider;

namespace Grpc.Backup.Providers.Directory;

/// <summary>
/// How the directory provider runs: where it keeps its backups (<c>--repository PATH</c> or
/// <c>BACKUP_DIRECTORY_REPOSITORY</c>), where the QEMU tools are, and the copy loop's tuning.
/// </summary>
public sealed record DirectoryRepositoryOptions(string RepositoryPath)
{
    public const string EnvironmentVariable = "BACKUP_DIRECTORY_REPOSITORY";

    /// <summary>
    /// Default NBD request size of the copy loop. Measured against qemu-nbd on a 2 GiB image: 256-512 KiB requests copy
    /// as fast as nbdcopy, while 1 MiB and more are about three times slower (qemu's NBD server answers large reads in
    /// pieces and stalls on the socket buffer). 256 KiB is nbdcopy's own default.
    /// </summary>
    public const int DefaultCopyRequestSize = 256 * 1024;

    /// <summary>Default number of chunk copies in flight per volume (4 MiB in flight with the default request size).</summary>
    public const int DefaultCopyDepth = 16;

    public string QemuImgPath { get; init; } = "/usr/bin/qemu-img";

    public string QemuNbdPath { get; init; } = "/usr/bin/qemu-nbd";

    /// <summary>Where the private qemu-nbd sockets go: systemd's RuntimeDirectory= when set, else the temp directory.</summary>
    public string RuntimeDirectory { get; init; } = DefaultRuntimeDirectory();

    public int CopyRequestSize { get; init; } = DefaultCopyRequestSize;

    public int CopyDepth { get; init; } = DefaultCopyDepth;

    /// <summary>
    /// Volumes of one BackupVm copied at once (<c>--parallel-volumes</c>, 1-16): a multi-disk guest's backup window is
    /// then set by its largest disk, not the sum of its disks, as long as the disks and CPUs keep up. Each volume in
    /// flight holds its own <see cref="CopyDepth"/> requests.
    /// </summary>
    public int ParallelVolumes { get; init; } = DefaultParallelVolumes;

    /// <summary>Default for <see cref="ParallelVolumes"/>.</summary>
    public const int DefaultParallelVolumes = 4;

    /// <summary>What BackupGetMechanism answers for VMs (<c>--vm-mechanism nbd|file-handle</c>); both are advertised.</summary>
    public VmBackupMechanism VmMechanism { get; init; } = VmBackupMechanism.Nbd;

    /// <summary>
    /// How container trees arrive (<c>--ct-mechanism directory|tar-stream</c>): through our worker in the container's
    /// user namespace (the default), or as the host's tar stream.
    /// </summary>
    public ContainerBackupMechanism ContainerMechanism { get; init; } = ContainerBackupMechanism.Directory;

    /// <summary>
    /// Whether BackupVm reports each volume's chunk digest (<c>VolumeCompleted.digest</c>) and keeps its chunk list
    /// (<c>--volume-digest no</c>, or the older <c>--content-sha256 no</c>, turns it off): a full hashes what it stores
    /// (holes cost nothing), an incremental only the chunks its dirty ranges touch.
    /// </summary>
    public bool VolumeDigest { get; init; } = true;

    public static DirectoryRepositoryOptions FromConfiguration(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        string? path = configuration["repository"] ?? Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (string.IsNullOrEmpty(path) || !Path.IsPathFullyQualified(path))
        {
            throw new ProviderOptionsException(
                $"the directory provider needs an absolute repository path: --repository PATH or {EnvironmentVariable}");
        }
        var options = new DirectoryRepositoryOptions(Path.TrimEndingDirectorySeparator(path));
        return options with
        {
            QemuImgPath = configuration["qemu-img"] ?? options.QemuImgPath,
            QemuNbdPath = configuration["qemu-nbd"] ?? options.QemuNbdPath,
            RuntimeDirectory = configuration["runtime-directory"] ?? options.RuntimeDirectory,
            CopyRequestSize = ReadInt(configuration, "copy-request-size", options.CopyRequestSize, 64 * 1024, 32 * 1024 * 1024),
            CopyDepth = ReadInt(configuration, "copy-depth", options.CopyDepth, 1, 64),
            ParallelVolumes = ReadInt(configuration, "parallel-volumes", options.ParallelVolumes, 1, 16),
            VmMechanism = configuration["vm-mechanism"] switch
            {
                null or "nbd" => VmBackupMechanism.Nbd,
                "file-handle" => VmBackupMechanism.FileHandle,
                string other => throw new ProviderOptionsException($"--vm-mechanism must be nbd or file-handle, not '{other}'"),
            },
            VolumeDigest = (configuration["volume-digest"] ?? configuration["content-sha256"]) switch
            {
                null or "yes" => true,
                "no" => false,
                string other => throw new ProviderOptionsException($"--volume-digest must be yes or no, not '{other}'"),
            },
            ContainerMechanism = configuration["ct-mechanism"] switch
            {
                null or "directory" => ContainerBackupMechanism.Directory,
                "tar-stream" => ContainerBackupMechanism.TarStream,
                string other => throw new ProviderOptionsException($"--ct-mechanism must be directory or tar-stream, not '{other}'"),
            },
        };
    }

    private static int ReadInt(IConfiguration configuration, string key, int fallback, int min, int max)
    {
        string? text = configuration[key];
        if (text is null)
        {
            return fallback;
        }
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value) || value < min || value > max)
        {
            throw new ProviderOptionsException($"--{key} must be a number from {min} to {max}, not '{text}'");
        }
        return value;
    }

    private static string DefaultRuntimeDirectory()
    {
        string? systemd = Environment.GetEnvironmentVariable("RUNTIME_DIRECTORY");
        return string.IsNullOrEmpty(systemd) ? Path.GetTempPath() : systemd.Split(':')[0];
    }
}
