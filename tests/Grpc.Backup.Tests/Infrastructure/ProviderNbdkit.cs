namespace Grpc.Backup.Tests.Infrastructure;

/// <summary>
/// A real nbdkit as a provider's own NBD server: its socket in the provider's runtime directory (root-only, as the
/// in-process provider runs as root), for <c>nbd_uri</c> restore sources.
/// </summary>
internal sealed class ProviderNbdkit(ChildProcess process, string runtimeDirectory, string socketPath) : IAsyncDisposable
{
    public string RuntimeDirectory => runtimeDirectory;

    public string SocketPath => socketPath;

    /// <summary>Starts nbdkit with <paramref name="plugin"/> (filters, plugin and its parameters) under <paramref name="work"/>.</summary>
    public static async Task<ProviderNbdkit> StartAsync(TempDirectory work, params string[] plugin)
    {
        string runtime = Directory.CreateDirectory(work.File("run")).FullName;
        File.SetUnixFileMode(runtime, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        string socketPath = Path.Combine(runtime, "nbd.sock");
        var nbdkit = ChildProcess.Start("nbdkit", ["--foreground", "--exit-with-parent", "-U", socketPath, .. plugin]);
        for (int i = 0; !File.Exists(socketPath); i++)
        {
            Assert.True(i < 2400, "nbdkit never bound its socket");
            await Task.Delay(25);
        }
        return new ProviderNbdkit(nbdkit, runtime, socketPath);
    }

    public ValueTask DisposeAsync() => process.DisposeAsync();
}
