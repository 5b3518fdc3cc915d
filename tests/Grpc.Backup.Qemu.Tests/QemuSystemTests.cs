using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Grpc.Backup.Qemu.Tests.Infrastructure;

namespace Grpc.Backup.Qemu.Tests;

/// <summary>QmpClient against a real, paused, device-less qemu-system-x86_64 (TCG).</summary>
public sealed partial class QemuSystemTests
{
    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Greeting_and_query_version_match_the_installed_binary()
    {
        string versionText = await QemuProcess.RunToolAsync("qemu-system-x86_64", "--version");
        Match installed = VersionPattern().Match(versionText);
        Assert.True(installed.Success, versionText);

        await using QemuProcess qemu = await QemuProcess.StartSystemAsync();
        await using QmpClient client = await qemu.ConnectAsync();

        Assert.Equal(Version.Parse(installed.Groups[1].Value), client.Greeting.Version.ToVersion());
        JsonNode? reply = await client.ExecuteAsync("query-version");
        Assert.Equal(client.Greeting.Version.Micro, (int)reply!["qemu"]!["micro"]!);
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Cont_and_stop_emit_RESUME_and_STOP()
    {
        await using QemuProcess qemu = await QemuProcess.StartSystemAsync();
        await using QmpClient client = await qemu.ConnectAsync();
        Assert.Equal("prelaunch", (string?)(await client.ExecuteAsync("query-status"))!["status"]);

        using QmpEventSubscription subscription = client.SubscribeEvents();
        using (QmpEventWaiter resumed = client.CreateEventWaiter("RESUME"))
        {
            await client.ExecuteAsync("cont");
            QmpEvent resume = await resumed.WaitAsync(TestTimeouts.Prompt);
            Assert.Empty(resume.Data); // RESUME has no data member
        }

        Assert.True((bool)(await client.ExecuteAsync("query-status"))!["running"]!);
        await client.ExecuteAsync("stop");

        QmpEvent first = await subscription.Reader.ReadAsync().AsTask().WaitAsync(TestTimeouts.Prompt);
        QmpEvent second = await subscription.Reader.ReadAsync().AsTask().WaitAsync(TestTimeouts.Prompt);
        Assert.Equal(["RESUME", "STOP"], new[] { first.Name, second.Name });
        Assert.True(second.Timestamp >= first.Timestamp);
        Assert.Equal("paused", (string?)(await client.ExecuteAsync("query-status"))!["status"]);
    }

    [GeneratedRegex(@"version (\d+\.\d+\.\d+)")]
    private static partial Regex VersionPattern();
}
