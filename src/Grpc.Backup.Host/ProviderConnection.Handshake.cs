using System.Text.RegularExpressions;
using Grpc.Backup.Protocol.V1;
using Grpc.Core;
using Grpc.Health.V1;
using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Host;

// The handshake, and the checks on what the provider says about itself: its reply is untrusted input.
public sealed partial class ProviderConnection
{
    private static readonly Regex ProviderName = new("^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$", RegexOptions.CultureInvariant);

    private async Task HandshakeAsync(CancellationToken cancellationToken)
    {
        GetProviderInfoResponse info;
        try
        {
            info = await Identity.GetProviderInfoAsync(new GetProviderInfoRequest(), cancellationToken: cancellationToken);
        }
        catch (RpcException e)
        {
            throw new ProviderHandshakeException($"provider at {Endpoint} did not answer GetProviderInfo: {e.Status.StatusCode}: {e.Status.Detail}", e);
        }
        ValidateInfo(info);
        uint? major = info.ProtocolMajors.Where(_options.SupportedMajors.Contains).Cast<uint?>().Max();
        if (major is null)
        {
            throw new ProviderHandshakeException(
                $"provider {info.Name} {info.VendorVersion} at {Endpoint} speaks protocol major(s) [{string.Join(", ", info.ProtocolMajors)}]; " +
                $"this host speaks [{string.Join(", ", _options.SupportedMajors)}]. Upgrade the provider or the host.");
        }
        Info = info;
        NegotiatedMajor = major.Value;
        await WaitUntilReadyAsync(cancellationToken);
        HealthCheckResponse health;
        try
        {
            health = await Health.CheckAsync(new HealthCheckRequest { Service = "" }, cancellationToken: cancellationToken);
        }
        catch (RpcException e)
        {
            throw new ProviderHandshakeException($"provider {info.Name} at {Endpoint} failed the health check: {e.Status.StatusCode}: {e.Status.Detail}", e);
        }
        if (health.Status != HealthCheckResponse.Types.ServingStatus.Serving)
        {
            throw new ProviderHandshakeException($"provider {info.Name} at {Endpoint} reports health {health.Status}, not SERVING");
        }
        _logger.LogInformation("Connected to provider {Name} {Version} at {Endpoint}, protocol v{Major}",
            info.Name, info.VendorVersion, Endpoint, NegotiatedMajor);
    }

    private async Task WaitUntilReadyAsync(CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.ReadinessTimeout);
        string lastMessage = "";
        try
        {
            while (true)
            {
                ProbeResponse probe = await Identity.ProbeAsync(new ProbeRequest(), cancellationToken: timeout.Token);
                switch (probe.State)
                {
                    case ProbeResponse.Types.State.Ready:
                        return;
                    case ProbeResponse.Types.State.NotReady:
                        lastMessage = probe.Message;
                        await Task.Delay(_options.ReadinessPollInterval, timeout.Token);
                        break;
                    case ProbeResponse.Types.State.Unhealthy:
                        throw new ProviderHandshakeException($"provider {Info.Name} at {Endpoint} is unhealthy: {probe.Message}");
                    default:
                        throw new ProviderHandshakeException($"provider {Info.Name} at {Endpoint} answered Probe with an invalid state ({probe.State})");
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new ProviderHandshakeException(
                $"provider {Info.Name} at {Endpoint} was not ready within {_options.ReadinessTimeout.TotalSeconds:0} s: {lastMessage}");
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled && !cancellationToken.IsCancellationRequested)
        {
            throw new ProviderHandshakeException(
                $"provider {Info.Name} at {Endpoint} was not ready within {_options.ReadinessTimeout.TotalSeconds:0} s: {lastMessage}", e);
        }
        catch (RpcException e)
        {
            throw new ProviderHandshakeException($"provider {Info.Name} at {Endpoint} failed Probe: {e.Status.StatusCode}: {e.Status.Detail}", e);
        }
    }

    private void ValidateInfo(GetProviderInfoResponse info)
    {
        var problems = new List<string>();
        if (!ProviderName.IsMatch(info.Name))
        {
            problems.Add($"name '{Truncate(info.Name)}' is not a DNS-like name");
        }
        if (info.VendorVersion.Length is 0 or > 128)
        {
            problems.Add("vendor_version must be 1 to 128 characters");
        }
        if (info.ProtocolMajors.Count == 0)
        {
            problems.Add("protocol_majors is empty");
        }
        if (info.Manifest.Count > 16 || info.Manifest.Any(p => p.Key.Length > 128 || p.Value.Length > 128))
        {
            problems.Add("manifest exceeds 16 entries of 128-byte keys and values");
        }
        Capabilities? caps = info.Capabilities;
        if (caps is null)
        {
            problems.Add("capabilities are missing");
        }
        else
        {
            CheckEnums(caps.VmBackupMechanisms, "vm_backup_mechanisms", problems);
            CheckEnums(caps.ContainerBackupMechanisms, "container_backup_mechanisms", problems);
            CheckEnums(caps.VmRestoreMechanisms, "vm_restore_mechanisms", problems);
            CheckEnums(caps.ContainerRestoreMechanisms, "container_restore_mechanisms", problems);
            CheckEnums(caps.RepositoryOperations, "repository_operations", problems);
            if (caps.Limits is { MaxFdsPerTransfer: > 64 })
            {
                problems.Add("limits.max_fds_per_transfer exceeds 64");
            }
        }
        if (problems.Count > 0)
        {
            throw new ProviderHandshakeException($"provider at {Endpoint} sent invalid GetProviderInfo: {string.Join("; ", problems)}");
        }
    }

    private static void CheckEnums<T>(IEnumerable<T> values, string field, List<string> problems) where T : struct, Enum
    {
        foreach (T value in values)
        {
            if (Convert.ToInt32(value, System.Globalization.CultureInfo.InvariantCulture) == 0 || !Enum.IsDefined(value))
            {
                problems.Add($"{field} holds an unspecified or unknown value ({value})");
                return;
            }
        }
    }

    private static string Truncate(string value) => value.Length <= 64 ? value : value[..64] + "…";
}
