using System.Globalization;
using Grpc.Backup.Provider;

namespace Grpc.Backup.Providers.Borg;

/// <summary>
/// How the Borg provider runs: the repository (a local path or <c>ssh://</c>), where its secrets are (files only:
/// they are handed to borg by path, never by value), its state directory, and how it treats locks.
/// </summary>
public sealed record BorgProviderOptions(string Repository, string StateDirectory)
{
    public const string RepositoryVariable = "BACKUP_BORG_REPOSITORY";

    /// <summary>Borg's fixed chunker with 4 MiB blocks: a disk block that did not change dedupes against the last backup.</summary>
    public const string ChunkerParams = "fixed,4194304";

    public string BorgPath { get; init; } = "/usr/bin/borg";

    /// <summary>A file holding the repository passphrase; borg reads it through BORG_PASSCOMMAND (<c>cat FILE</c>).</summary>
    public string? PassphraseFile { get; init; }

    /// <summary>An SSH private key file for ssh:// repositories (BORG_RSH <c>ssh -i FILE</c>).</summary>
    public string? SshKeyFile { get; init; }

    /// <summary>A known_hosts file for ssh:// repositories; host keys are checked strictly.</summary>
    public string? SshKnownHostsFile { get; init; }

    /// <summary>
    /// When set, borg may remove a lock left by a borg process of this host that no longer runs
    /// (BORG_HOSTNAME_IS_UNIQUE=yes). Off by default: a stale lock is reported and the operator decides.
    /// </summary>
    public bool BreakStaleLocks { get; init; }

    /// <summary>How long borg waits for a repository lock held by someone else before it fails.</summary>
    public int LockWaitSeconds { get; init; } = 5;

    public string Compression { get; init; } = "lz4";

    /// <summary>The VM mechanism BackupGetMechanism asks the host for (both are accepted in BackupVm).</summary>
    public Grpc.Backup.Protocol.V1.VmBackupMechanism VmMechanism { get; init; } = Grpc.Backup.Protocol.V1.VmBackupMechanism.Nbd;

    /// <summary>Where restores extract images before passing them to the host (files unlinked at once).</summary>
    public string ScratchDirectory { get; init; } = "";

    public int CopyRequestSize { get; init; } = 256 * 1024;

    public int CopyDepth { get; init; } = 16;

    public bool IsRemote => Repository.StartsWith("ssh://", StringComparison.Ordinal);

    public static BorgProviderOptions FromConfiguration(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        string repository = configuration["repository"] ?? Environment.GetEnvironmentVariable(RepositoryVariable) ?? "";
        if (!(Path.IsPathFullyQualified(repository) || IsSshUrl(repository)))
        {
            throw new ProviderOptionsException(
                $"the borg provider needs --repository PATH (absolute) or ssh://user@host[:port]/path (or {RepositoryVariable}), not '{repository}'");
        }
        string? state = configuration["state-directory"] ?? FirstOf(Environment.GetEnvironmentVariable("STATE_DIRECTORY"));
        if (string.IsNullOrEmpty(state) || !Path.IsPathFullyQualified(state))
        {
            throw new ProviderOptionsException("the borg provider needs an absolute --state-directory (or systemd's StateDirectory=)");
        }
        var options = new BorgProviderOptions(repository.TrimEnd('/'), Path.TrimEndingDirectorySeparator(state));
        options = options with
        {
            BorgPath = configuration["borg"] ?? options.BorgPath,
            PassphraseFile = SecretFile(configuration, "passphrase-file"),
            SshKeyFile = SecretFile(configuration, "ssh-key-file"),
            SshKnownHostsFile = SecretFile(configuration, "ssh-known-hosts"),
            BreakStaleLocks = ReadBool(configuration, "break-stale-locks"),
            LockWaitSeconds = ReadInt(configuration, "lock-wait", options.LockWaitSeconds, 0, 3600),
            Compression = CheckCompression(configuration["compression"] ?? options.Compression),
            VmMechanism = configuration["vm-mechanism"] switch
            {
                null or "nbd" => Grpc.Backup.Protocol.V1.VmBackupMechanism.Nbd,
                "file-handle" => Grpc.Backup.Protocol.V1.VmBackupMechanism.FileHandle,
                string other => throw new ProviderOptionsException($"--vm-mechanism must be nbd or file-handle, not '{other}'"),
            },
            ScratchDirectory = configuration["scratch-directory"] ?? Path.Join(options.StateDirectory, "scratch"),
            CopyRequestSize = ReadInt(configuration, "copy-request-size", options.CopyRequestSize, 64 * 1024, 32 * 1024 * 1024),
            CopyDepth = ReadInt(configuration, "copy-depth", options.CopyDepth, 1, 64),
        };
        return options;
    }

    private static bool IsSshUrl(string text) =>
        Uri.TryCreate(text, UriKind.Absolute, out Uri? uri) && uri.Scheme == "ssh" && uri.Host.Length > 0 && uri.AbsolutePath.Length > 1;

    /// <summary>
    /// Secret files are passed to borg and ssh by path inside a command line borg splits with shlex, so the path must
    /// be absolute and free of quotes and whitespace.
    /// </summary>
    private static string? SecretFile(IConfiguration configuration, string key)
    {
        string? path = configuration[key];
        if (path is null)
        {
            return null;
        }
        if (!Path.IsPathFullyQualified(path) || path.Any(c => char.IsWhiteSpace(c) || c is '\'' or '"' or '\\' || char.IsControl(c)))
        {
            throw new ProviderOptionsException($"--{key} must be an absolute path without quotes or whitespace");
        }
        return path;
    }

    private static string CheckCompression(string value) =>
        value.All(c => char.IsAsciiLetterOrDigit(c) || c is ',' or '-')
            ? value
            : throw new ProviderOptionsException($"--compression '{value}' is not a borg compression spec (e.g. lz4, zstd,3)");

    private static bool ReadBool(IConfiguration configuration, string key) => configuration[key] switch
    {
        null or "false" or "0" or "no" => false,
        "true" or "1" or "yes" => true,
        string other => throw new ProviderOptionsException($"--{key} must be true or false, not '{other}'"),
    };

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

    private static string? FirstOf(string? colonList) => string.IsNullOrEmpty(colonList) ? null : colonList.Split(':')[0];
}
