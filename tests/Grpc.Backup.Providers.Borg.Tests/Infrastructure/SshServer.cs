using System.Net;
using System.Net.Sockets;

namespace Grpc.Backup.Providers.Borg.Tests.Infrastructure;

/// <summary>
/// A real OpenSSH server on 127.0.0.1 for the test only: <c>/usr/sbin/sshd -D -e -f CONFIG -p PORT</c> with a fresh
/// host key, its own authorized_keys and pid file in a temp directory; the system's sshd service is never touched.
/// Logins are root by key only, and each key may run nothing but <c>borg serve --restrict-to-path REPO</c>, as a
/// backup server should be set up. Disposing kills sshd and removes the directory, also when the test failed.
/// </summary>
internal sealed class SshServer : IAsyncDisposable
{
    private readonly TempDirectory _directory;
    private ChildProcess? _sshd;

    private SshServer(TempDirectory directory, int port, string hostKeyLine)
    {
        _directory = directory;
        Port = port;
        HostKeyLine = hostKeyLine;
    }

    public int Port { get; }

    /// <summary>The server's public host key (<c>ssh-ed25519 AAAA...</c>).</summary>
    public string HostKeyLine { get; }

    /// <summary>A repository path on the server side (root's, as <c>borg serve</c> runs as root).</summary>
    public string RepositoryPath => _directory.File("repo");

    public string RepositoryUrl => $"ssh://root@127.0.0.1:{Port}{RepositoryPath}";

    /// <summary>The line of a known_hosts file that trusts exactly this server on its port.</summary>
    public string KnownHostsLine => $"[127.0.0.1]:{Port} {HostKeyLine}";

    /// <summary>sshd's log (-e: to stderr), for failure messages.</summary>
    public string Log => _sshd?.StandardError ?? "";

    public static async Task<SshServer> StartAsync()
    {
        var directory = new TempDirectory();
        SshServer? server = null;
        try
        {
            // sshd refuses to start without its privilege separation directory; a container image may lack it.
            System.IO.Directory.CreateDirectory("/run/sshd");
            await RunAsync("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "gbt-host", "-f", directory.File("host_ed25519"));
            string hostKey = (await File.ReadAllTextAsync(directory.File("host_ed25519.pub"))).Trim();
            int port = LoopbackPorts.Free();
            await File.WriteAllTextAsync(directory.File("authorized_keys"), "");
            await File.WriteAllTextAsync(directory.File("sshd_config"), $"""
                ListenAddress 127.0.0.1
                HostKey {directory.File("host_ed25519")}
                PidFile {directory.File("sshd.pid")}
                AuthorizedKeysFile {directory.File("authorized_keys")}
                # The temp directory lives under /tmp (world-writable), which StrictModes would reject.
                StrictModes no
                PermitRootLogin prohibit-password
                AllowUsers root
                PubkeyAuthentication yes
                PasswordAuthentication no
                KbdInteractiveAuthentication no
                UsePAM no
                AllowTcpForwarding no
                AllowAgentForwarding no
                X11Forwarding no
                PermitTTY no
                # borg serve keeps its own state in the temp directory, not in root's home.
                SetEnv BORG_BASE_DIR={directory.File("server-borg")}
                LogLevel VERBOSE

                """);
            (int check, _, string checkErrors) = await ChildProcess.RunAsync("/usr/sbin/sshd", ["-t", "-f", directory.File("sshd_config"), "-p", $"{port}"]);
            Assert.True(check == 0, $"sshd -t rejected the test configuration: {checkErrors}");
            server = new SshServer(directory, port, hostKey);
            server._sshd = ChildProcess.Start("/usr/sbin/sshd", ["-D", "-e", "-f", directory.File("sshd_config"), "-p", $"{port}"]);
            await server.WaitUntilListeningAsync();
            return server;
        }
        catch
        {
            if (server is not null)
            {
                await server.DisposeAsync();
            }
            else
            {
                directory.Dispose();
            }
            throw;
        }
    }

    /// <summary>Lets <paramref name="publicKeyLine"/> log in, for <c>borg serve</c> on the repository only.</summary>
    public Task AuthorizeAsync(string publicKeyLine) =>
        File.AppendAllTextAsync(_directory.File("authorized_keys"),
            $"restrict,command=\"borg serve --restrict-to-path {RepositoryPath}\" {publicKeyLine.Trim()}\n");

    /// <summary><c>borg init -e repokey</c> of the server's repository, run on the server side (as root).</summary>
    public async Task InitRepositoryAsync(string passphraseFile)
    {
        (int exit, _, string stderr) = await ChildProcess.RunAsync("borg", ["init", "-e", "repokey", RepositoryPath], ServerBorgEnvironment(passphraseFile),
            timeout: TimeSpan.FromMinutes(2));
        Assert.True(exit == 0, $"borg init failed: {stderr}");
    }

    /// <summary><c>borg check</c> of the repository on the server side.</summary>
    public Task<(int ExitCode, string Stdout, string Stderr)> CheckRepositoryAsync(string passphraseFile) =>
        ChildProcess.RunAsync("borg", ["check", RepositoryPath], ServerBorgEnvironment(passphraseFile), timeout: TimeSpan.FromMinutes(5));

    private Dictionary<string, string?> ServerBorgEnvironment(string passphraseFile) => new()
    {
        ["BORG_BASE_DIR"] = _directory.File("admin-borg"),
        ["BORG_PASSCOMMAND"] = "cat " + passphraseFile,
        ["BORG_PASSPHRASE"] = null,
    };

    private async Task WaitUntilListeningAsync()
    {
        DateTime deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            if (_sshd!.HasExited)
            {
                throw new InvalidOperationException($"sshd exited before it listened:\n{Log}");
            }
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, Port);
                return;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(50);
            }
        }
    }

    private static async Task RunAsync(string program, params string[] arguments)
    {
        (int exit, _, string stderr) = await ChildProcess.RunAsync(program, arguments);
        Assert.True(exit == 0, $"{program} failed: {stderr}");
    }

    public async ValueTask DisposeAsync()
    {
        if (_sshd is not null)
        {
            // Kills the listener and its per-connection children (borg serve included) as one tree.
            await _sshd.DisposeAsync();
        }
        _directory.Dispose();
    }
}
