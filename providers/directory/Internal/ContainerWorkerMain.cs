using System.Diagnostics;
using System.IO.Pipes;
using Grpc.Backup.Provider;

namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>
/// <c>container-worker</c>: the directory provider's worker for mechanism DIRECTORY. The host runs it inside the
/// container's user namespace as the container's root; it archives the view with GNU tar (pax, numeric container-view
/// owners, xattrs, ACLs, sparse files, hard links, device nodes) compressed with zstd, and streams the result to the
/// provider through the pipe <see cref="ContainerWorker"/> hands over. Exit status 0: everything was written.
/// </summary>
internal static class ContainerWorkerMain
{
    public const string Command = "container-worker";

    public static async Task<int> RunAsync()
    {
        try
        {
            ContainerWorker worker = ContainerWorker.FromEnvironment();
            var info = new ProcessStartInfo("tar") { RedirectStandardOutput = true, RedirectStandardInput = true };
            // zstd on every core: on a small host the compressor, not tar, is what limits the backup.
            foreach (string argument in worker.TarArguments("--use-compress-program=zstd -T0"))
            {
                info.ArgumentList.Add(argument);
            }
            using Process tar = Process.Start(info) ?? throw new InvalidOperationException("cannot start tar");
            tar.StandardInput.Close();
            long bytes = -1;
            if (worker.BytesPerSecond == 0 && tar.StandardOutput.BaseStream is PipeStream stdout)
            {
                // Unlimited: the provider reads tar's own stdout; the archive never passes through this process.
                await worker.SendPipeToProviderAsync(stdout.SafePipeHandle, CancellationToken.None);
                stdout.Dispose();
            }
            else
            {
                await using Stream toProvider = await worker.OpenStreamToProviderAsync(CancellationToken.None);
                bytes = await worker.CopyAsync(tar.StandardOutput.BaseStream, toProvider, CancellationToken.None);
            }
            await tar.WaitForExitAsync();
            // tar's own messages went to our stderr, which the host reports as warnings. Status 1 is "file changed as
            // we read it": the archive is complete and well formed.
            Console.WriteLine(bytes < 0
                ? $"container-worker: tar's output went to the provider directly, tar exit status {tar.ExitCode}"
                : $"container-worker: {bytes} compressed bytes sent, tar exit status {tar.ExitCode}");
            return tar.ExitCode is 0 or 1 ? 0 : 2;
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or System.ComponentModel.Win32Exception)
        {
            Console.Error.WriteLine($"container-worker: {e.Message}");
            return 2;
        }
    }
}
