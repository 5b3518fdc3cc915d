using System.CommandLine;
using Google.Protobuf;
using Grpc.Backup.Host;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Core;

namespace Grpc.Backup.Cli;

/// <summary><c>grpc-backup providers info</c>: connects to a provider, runs the handshake and shows what it offers.</summary>
internal static class ProvidersCommand
{
    public static Command Create()
    {
        var endpoint = CommonOptions.Endpoint();
        var json = CommonOptions.Json();
        var info = new Command("info", "Run the handshake with a provider and show its identity, capabilities and health")
        {
            endpoint,
            json,
        };
        info.SetAction(async (result, cancellationToken) =>
            await InfoAsync(result.GetValue(endpoint)!, result.GetValue(json), cancellationToken));
        return new Command("providers", "Inspect backup providers") { info };
    }

    private static async Task<int> InfoAsync(string endpointText, bool json, CancellationToken cancellationToken)
    {
        ProviderEndpoint endpoint;
        try
        {
            endpoint = ProviderEndpoint.Parse(endpointText);
        }
        catch (FormatException e)
        {
            await Console.Error.WriteLineAsync($"grpc-backup: {e.Message}");
            return ExitCodes.Usage;
        }
        try
        {
            await using ProviderConnection connection = await ProviderConnection.ConnectAsync(endpoint, cancellationToken: cancellationToken);
            if (json)
            {
                Console.WriteLine(JsonFormatter.Default.Format(connection.Info));
            }
            else
            {
                Print(connection);
            }
            return ExitCodes.Success;
        }
        catch (ProviderHandshakeException e) when (e.InnerException is RpcException { StatusCode: StatusCode.Unavailable })
        {
            await Console.Error.WriteLineAsync($"grpc-backup: cannot reach the provider: {e.Message}");
            return ExitCodes.ProviderUnreachable;
        }
        catch (ProviderHandshakeException e)
        {
            await Console.Error.WriteLineAsync($"grpc-backup: {e.Message}");
            return ExitCodes.ProviderRefused;
        }
    }

    private static void Print(ProviderConnection connection)
    {
        GetProviderInfoResponse info = connection.Info;
        Capabilities caps = info.Capabilities;
        Console.WriteLine($"provider        {info.Name} {info.VendorVersion}");
        Console.WriteLine($"endpoint        {connection.Endpoint}");
        Console.WriteLine($"protocol        v{connection.NegotiatedMajor} (provider speaks {string.Join(", ", info.ProtocolMajors.Select(m => "v" + m))})");
        Console.WriteLine("ready           yes (Probe READY, health SERVING)");
        Console.WriteLine($"vm backup       {List(caps.VmBackupMechanisms)}");
        Console.WriteLine($"ct backup       {List(caps.ContainerBackupMechanisms)}");
        Console.WriteLine($"vm restore      {List(caps.VmRestoreMechanisms)}");
        Console.WriteLine($"ct restore      {List(caps.ContainerRestoreMechanisms)}");
        Console.WriteLine($"incremental     {(caps.IncrementalVmBackup ? "yes" : "no")}");
        Console.WriteLine($"repository ops  {List(caps.RepositoryOperations)}");
        Console.WriteLine($"file restore    {(caps.SingleFileRestore ? "yes" : "no")}");
        if (caps.Limits is { } limits)
        {
            Console.WriteLine($"limits          backups at once {limits.MaxConcurrentBackups}, fds per transfer {limits.MaxFdsPerTransfer}, read size {limits.PreferredReadSizeBytes} B");
        }
    }

    private static string List<T>(IEnumerable<T> values) where T : struct, Enum
    {
        string[] names = values.Select(v => v.ToString()).ToArray();
        return names.Length == 0 ? "none" : string.Join(", ", names);
    }
}
