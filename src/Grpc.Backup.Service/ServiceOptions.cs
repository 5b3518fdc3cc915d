namespace Grpc.Backup.Service;

/// <summary>grpc-backupd's command line; the defaults are the system paths a packaged service uses.</summary>
public sealed class ServiceOptions
{
    public const string DefaultSocket = "/run/grpc-backup/service.sock";

    /// <summary>The configuration directory (host.conf, guests/, storages/, jobs/).</summary>
    public string ConfigDirectory { get; set; } = "/etc/grpc-backup";

    /// <summary>The catalog, the journal and the task logs.</summary>
    public string StateDirectory { get; set; } = "/var/lib/grpc-backup";

    /// <summary>Private runtime files (snapshot NBD sockets).</summary>
    public string RuntimeDirectory { get; set; } = "/run/grpc-backup/work";

    /// <summary>The per-guest locks, shared with the CLI's direct mode (<c>grpc-backup backup --endpoint … --lock-dir</c>).</summary>
    public string LockDirectory { get; set; } = Orchestrator.GuestLock.DefaultDirectory;

    /// <summary>The management socket (mode 0600, root only).</summary>
    public string SocketPath { get; set; } = DefaultSocket;

    /// <summary>Only load and check the configuration, print the result and exit.</summary>
    public bool CheckConfig { get; set; }

    /// <summary>Print <see cref="Usage"/> and exit.</summary>
    public bool Help { get; set; }

    public const string Usage = "grpc-backupd [--config DIR] [--state DIR] [--runtime DIR] [--lock-dir DIR] [--socket PATH] [--check-config]";

    /// <summary>Parses <c>--config DIR --state DIR --runtime DIR --lock-dir DIR --socket PATH --check-config --help</c>.</summary>
    /// <exception cref="ArgumentException">An unknown option or a missing value.</exception>
    public static ServiceOptions Parse(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var options = new ServiceOptions();
        for (int i = 0; i < args.Count; i++)
        {
            string Value() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--config":
                    options.ConfigDirectory = Value();
                    break;
                case "--state":
                    options.StateDirectory = Value();
                    break;
                case "--runtime":
                    options.RuntimeDirectory = Value();
                    break;
                case "--lock-dir":
                    options.LockDirectory = Value();
                    break;
                case "--socket":
                    options.SocketPath = Value();
                    break;
                case "--check-config":
                    options.CheckConfig = true;
                    break;
                case "--help" or "-h":
                    options.Help = true;
                    break;
                default:
                    throw new ArgumentException($"unknown option '{args[i]}'; {Usage}");
            }
        }
        return options;
    }
}
