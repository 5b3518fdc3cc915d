using System.Globalization;
using System.Net.Sockets;
using Grpc.Backup.Host;
using Grpc.Backup.Protocol;

namespace Grpc.Backup.Packaging.Tests.Infrastructure;

/// <summary>
/// A provider sidecar started the way its two units start it, with the host's file system re-rooted under a test
/// directory. From the .socket unit: <c>ListenStream=</c> and <c>ListenSequentialPacket=</c> become two nested
/// <c>systemd-socket-activate</c> (one passes one socket type; the inner one passes the outer's fd through, so the
/// provider gets both, as from systemd) under a parent named systemd; <c>SocketMode=</c>, <c>SocketUser=</c>/
/// <c>SocketGroup=</c> and <c>DirectoryMode=</c> are applied. From the .service unit: <c>ExecStart=</c> (the installed program swapped for this
/// checkout's, every other absolute path re-rooted), <c>User=</c> (<see cref="ServiceAccount"/>), <c>StateDirectory=</c>,
/// <c>RuntimeDirectory=</c>, <c>LoadCredential=</c> (<c>$CREDENTIALS_DIRECTORY</c>), <c>ReadWritePaths=</c>,
/// <c>UMask=</c>, <c>NoNewPrivileges=</c> and an empty <c>CapabilityBoundingSet=</c> (setpriv).
/// </summary>
internal sealed class SocketActivatedSidecar : IAsyncDisposable
{
    private readonly SystemdUnit _socketUnit;
    private readonly NotifySocket? _notify;

    private SocketActivatedSidecar(SystemdUnit socketUnit, string root, ServiceAccount account, ChildProcess process, ProviderEndpoint endpoint,
        int socketMode, NotifySocket? notify)
    {
        _socketUnit = socketUnit;
        _notify = notify;
        Root = root;
        Account = account;
        Process = process;
        Endpoint = endpoint;
        SocketMode = socketMode;
    }

    /// <summary>The directory standing in for the host's /.</summary>
    public string Root { get; }

    public ServiceAccount Account { get; }

    /// <summary>
    /// A shell named systemd, standing in for PID 1 as the provider's parent (.NET's UseSystemd notifies only under a
    /// parent of that name). Its one child is the outer systemd-socket-activate, which execs (same pid) into the inner
    /// one, setpriv and the provider.
    /// </summary>
    public ChildProcess Process { get; }

    public ProviderEndpoint Endpoint { get; }

    public int SocketMode { get; }

    /// <summary>A path of the unit, re-rooted: where the test's files stand for the host's.</summary>
    public static string Rerooted(string root, string path) =>
        Path.IsPathFullyQualified(path) ? root + path : throw new FormatException($"'{path}' is not an absolute path");

    /// <summary>
    /// Prepares the account's directories and credentials, then starts the outer socket; the provider itself starts on
    /// the first connection (<see cref="ConnectAsync"/>).
    /// </summary>
    /// <param name="credentials">The content of each <c>LoadCredential=</c> by credential name (the unit's source
    /// file stays unread: it is the host's secret).</param>
    /// <param name="prepare">Runs once the directories exist, before the start (e.g. <c>borg init</c> as the account).</param>
    public static async Task<SocketActivatedSidecar> StartAsync(string provider, string root, IReadOnlyDictionary<string, string> credentials,
        Func<SidecarEnvironment, Task>? prepare = null)
    {
        var socketUnit = SystemdUnit.Load($"grpc-backup-provider-{provider}.socket");
        var serviceUnit = SystemdUnit.Load($"grpc-backup-provider-{provider}.service");
        ServiceAccount account = await ServiceAccount.ResolveAsync(serviceUnit.Single("Service", "User"));

        string grpcPath = Rerooted(root, socketUnit.Single("Socket", "ListenStream"));
        string sidebandPath = Rerooted(root, socketUnit.Single("Socket", "ListenSequentialPacket"));
        int socketMode = Octal(socketUnit.Single("Socket", "SocketMode"));
        Directory.CreateDirectory(Path.GetDirectoryName(grpcPath)!, (UnixFileMode)Octal(socketUnit.Optional("Socket", "DirectoryMode") ?? "0755"));

        var environment = new SidecarEnvironment(root, account,
            SystemdDirectory(root, "/var/lib", serviceUnit.Optional("Service", "StateDirectory"), serviceUnit.Optional("Service", "StateDirectoryMode")),
            SystemdDirectory(root, "/run", serviceUnit.Optional("Service", "RuntimeDirectory"), serviceUnit.Optional("Service", "RuntimeDirectoryMode")),
            credentials.Count > 0 ? Rerooted(root, "/run/credentials/" + serviceUnit.Name) : null);
        foreach (string directory in new[] { environment.StateDirectory, environment.RuntimeDirectory }.OfType<string>())
        {
            await RunCheckedAsync("chown", account.Owner, directory);
        }
        // tmpfiles.d creates each ReadWritePaths= directory, owned by the provider's user alone.
        foreach (string path in serviceUnit.All("Service", "ReadWritePaths").SelectMany(v => v.Split(' ', StringSplitOptions.RemoveEmptyEntries)))
        {
            string directory = Rerooted(root, path.TrimStart('-'));
            Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            await RunCheckedAsync("chown", account.Owner, directory);
        }
        if (environment.CredentialsDirectory is string credentialsDirectory)
        {
            await WriteCredentialsAsync(serviceUnit, credentialsDirectory, credentials, account);
        }
        if (prepare is not null)
        {
            await prepare(environment);
        }

        List<string> command = ["systemd-socket-activate", "-l", grpcPath, $"--fdname={socketUnit.Name}", "--",
            "systemd-socket-activate", "--seqpacket", "-l", sidebandPath, $"--fdname={socketUnit.Name}:{socketUnit.Name}"];
        foreach (var (name, value) in environment.Variables(serviceUnit))
        {
            command.Add("-E");
            command.Add($"{name}={value}");
        }
        // Type=notify: the provider must say READY=1, or systemd would kill it at TimeoutStartSec.
        NotifySocket? notify = null;
        if (serviceUnit.Optional("Service", "Type") == "notify")
        {
            notify = new NotifySocket(Path.Combine(root, "notify"));
            command.AddRange(["-E", $"NOTIFY_SOCKET={notify.Path}"]);
        }
        command.Add("--");
        command.AddRange(["setpriv", "--reuid", account.Uid.ToString(CultureInfo.InvariantCulture),
            "--regid", account.Gid.ToString(CultureInfo.InvariantCulture), "--clear-groups"]);
        if (serviceUnit.IsYes("Service", "NoNewPrivileges"))
        {
            command.Add("--no-new-privs");
        }
        if (serviceUnit.Optional("Service", "CapabilityBoundingSet") == "")
        {
            command.AddRange(["--bounding-set=-all", "--inh-caps=-all"]);
        }
        command.AddRange(["--", "/bin/sh", "-c", $"umask {serviceUnit.Optional("Service", "UMask") ?? "0022"} && exec \"$@\"", "sh"]);
        command.AddRange(UnitCommandLine.ExecStart(serviceUnit, root, environment));

        string parent = Path.Combine(root, "systemd");
        File.CreateSymbolicLink(parent, "/bin/bash");
        ChildProcess process = ChildProcess.Start(parent, ["-c", "\"$@\" & wait $!", "systemd", .. command]);
        var sidecar = new SocketActivatedSidecar(socketUnit, root, account, process, ProviderEndpoint.Parse("unix:" + grpcPath), socketMode, notify);
        try
        {
            await process.WaitForFileAsync(grpcPath, TimeSpan.FromSeconds(30));
            await ApplySocketSettingsAsync(socketUnit, grpcPath, socketMode);
            if (sidebandPath != sidecar.Endpoint.SidebandPath)
            {
                throw new InvalidOperationException($"{socketUnit.Name}: ListenSequentialPacket={sidebandPath} is not ListenStream= + \".fds\"");
            }
            return sidecar;
        }
        catch
        {
            await sidecar.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Starts the provider (the first connection to the gRPC socket activates it), waits for the sideband socket the
    /// inner socket-activate binds then, applies the unit's socket settings to it too, and connects as the host.
    /// </summary>
    public async Task<ProviderConnection> ConnectAsync()
    {
        using (var trigger = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            // Held open until the inner socket-activate has bound the sideband: a connection queued on the passed
            // socket is what makes it exec the provider.
            await trigger.ConnectAsync(new UnixDomainSocketEndPoint(Endpoint.SocketPath));
            await Process.WaitForFileAsync(Endpoint.SidebandPath, TimeSpan.FromSeconds(30));
            await ApplySocketSettingsAsync(_socketUnit, Endpoint.SidebandPath, SocketMode);
        }
        return await ProviderConnection.ConnectAsync(Endpoint, new ProviderConnectionOptions { UnaryDeadline = TimeSpan.FromMinutes(3) });
    }

    /// <summary>The pid of the provider: the stand-in parent's one child (every stage of the chain execs the next).</summary>
    public int ProviderPid => int.Parse(File.ReadAllText($"/proc/{Process.Id}/task/{Process.Id}/children").Trim(), CultureInfo.InvariantCulture);

    /// <summary>For a <c>Type=notify</c> unit: the first notification that carries READY=1 (false for other types).</summary>
    public async Task<bool> WaitForReadyAsync(TimeSpan timeout)
    {
        if (_notify is null)
        {
            return false;
        }
        await _notify.WaitForReadyAsync(timeout, () => Process.StandardError);
        return true;
    }

    public async ValueTask DisposeAsync()
    {
        await Process.DisposeAsync();
        _notify?.Dispose();
    }

    /// <summary>
    /// systemd-socket-activate creates every socket 0644 owned by its caller; systemd would apply the unit's settings
    /// before anyone can connect, and so does the test, before its first connection.
    /// </summary>
    private static async Task ApplySocketSettingsAsync(SystemdUnit socketUnit, string path, int mode)
    {
        File.SetUnixFileMode(path, (UnixFileMode)mode);
        string user = socketUnit.Optional("Socket", "SocketUser") ?? "root";
        string group = socketUnit.Optional("Socket", "SocketGroup") ?? "root";
        // The packaged group exists once build/install ran; elsewhere root's group stands in (the host is root).
        (int exit, _, _) = await ChildProcess.RunAsync("getent", ["group", group]);
        await RunCheckedAsync("chown", $"{user}:{(exit == 0 ? group : "root")}", path);
    }

    private static async Task WriteCredentialsAsync(SystemdUnit serviceUnit, string directory, IReadOnlyDictionary<string, string> credentials,
        ServiceAccount account)
    {
        Directory.CreateDirectory(directory);
        var names = serviceUnit.All("Service", "LoadCredential").Select(v => v.Split(':', 2)[0]).ToHashSet();
        Assert.Equal(names.Order(), credentials.Keys.Order());
        foreach (var (name, content) in credentials)
        {
            string file = Path.Combine(directory, name);
            await File.WriteAllTextAsync(file, content);
            File.SetUnixFileMode(file, UnixFileMode.UserRead);
        }
        // As systemd lays them out: the directory 0500 and each file 0400, both the service user's.
        File.SetUnixFileMode(directory, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        await RunCheckedAsync("chown", "-R", account.Owner, directory);
    }

    /// <summary>StateDirectory=NAME is /var/lib/NAME, RuntimeDirectory=NAME is /run/NAME; created with the unit's mode.</summary>
    private static string? SystemdDirectory(string root, string parent, string? name, string? mode)
    {
        if (name is null)
        {
            return null;
        }
        string path = Rerooted(root, $"{parent}/{name}");
        Directory.CreateDirectory(path);
        File.SetUnixFileMode(path, (UnixFileMode)Octal(mode ?? "0755"));
        return path;
    }

    private static int Octal(string text) => Convert.ToInt32(text, 8);

    private static async Task RunCheckedAsync(string program, params string[] arguments)
    {
        (int exit, string stdout, string stderr) = await ChildProcess.RunAsync(program, arguments);
        if (exit != 0)
        {
            throw new InvalidOperationException($"{program} {string.Join(' ', arguments)} failed ({exit}): {stdout}{stderr}");
        }
    }
}
