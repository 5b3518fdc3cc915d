using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Grpc.Backup.Qemu.Tests.Infrastructure;

namespace Grpc.Backup.Qemu.Tests;

/// <summary>QmpClient against a real qemu-storage-daemon serving a qcow2 node <c>fmt0</c> on <c>file0</c>.</summary>
public sealed partial class StorageDaemonTests
{
    internal static Task<QemuProcess> StartWithQcow2Async() => QemuProcess.StartStorageDaemonAsync(
        dir =>
        [
            "--blockdev", $"driver=file,node-name=file0,filename={Path.Combine(dir, "disk.qcow2")}",
            "--blockdev", "driver=qcow2,node-name=fmt0,file=file0",
        ],
        dir => QemuProcess.RunToolAsync("qemu-img", "create", "-q", "-f", "qcow2", Path.Combine(dir, "disk.qcow2"), "16M"));

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Greeting_reports_the_installed_version_and_matches_query_version()
    {
        string versionText = await QemuProcess.RunToolAsync("qemu-storage-daemon", "--version");
        Match installed = VersionPattern().Match(versionText);
        Assert.True(installed.Success, versionText);

        await using QemuProcess qemu = await StartWithQcow2Async();
        await using QmpClient client = await qemu.ConnectAsync();

        QmpVersion version = client.Greeting.Version;
        Assert.Equal(Version.Parse(installed.Groups[1].Value), version.ToVersion());
        // The fleecing recipes this project relies on (snapshot-access, CBW) need at least 7.2.
        Assert.True(version.ToVersion() >= new Version(7, 2, 0), version.ToString());
        Assert.Contains("oob", client.Greeting.Capabilities);
        Assert.True(client.IsConnected);

        JsonNode? reply = await client.ExecuteAsync("query-version");
        Assert.Equal(version.Major, (int)reply!["qemu"]!["major"]!);
        Assert.Equal(version.Minor, (int)reply["qemu"]!["minor"]!);
        Assert.Equal(version.Micro, (int)reply["qemu"]!["micro"]!);
        Assert.Equal(version.Package, ((string?)reply["package"])?.Trim());
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Unknown_command_fails_with_CommandNotFound()
    {
        await using QemuProcess qemu = await StartWithQcow2Async();
        await using QmpClient client = await qemu.ConnectAsync();

        var ex = await Assert.ThrowsAsync<QmpCommandException>(() => client.ExecuteAsync("no-such-command"));

        Assert.Equal(QmpErrorClass.CommandNotFound, ex.ErrorClass);
        Assert.Equal("no-such-command", ex.Command);
        Assert.Contains("no-such-command", ex.Description, StringComparison.Ordinal);
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Command_error_carries_class_and_description_and_leaves_the_connection_usable()
    {
        await using QemuProcess qemu = await StartWithQcow2Async();
        await using QmpClient client = await qemu.ConnectAsync();

        var ex = await Assert.ThrowsAsync<QmpCommandException>(
            () => client.ExecuteAsync("blockdev-del", new JsonObject { ["node-name"] = "no-such-node" }));

        Assert.Equal(QmpErrorClass.GenericError, ex.ErrorClass);
        Assert.Equal("blockdev-del", ex.Command);
        Assert.Contains("no-such-node", ex.Description, StringComparison.Ordinal);
        Assert.Contains(ex.Description, ex.Message, StringComparison.Ordinal);

        JsonNode? nodes = await client.ExecuteAsync("query-named-block-nodes", new JsonObject { ["flat"] = true });
        Assert.Contains("fmt0", NodeNames(nodes));
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Transaction_adds_two_bitmaps()
    {
        await using QemuProcess qemu = await StartWithQcow2Async();
        await using QmpClient client = await qemu.ConnectAsync();

        await client.TransactionAsync(
        [
            BitmapAdd("fmt0", "bm-a"),
            BitmapAdd("fmt0", "bm-b"),
        ]);

        Assert.Equal(["bm-a", "bm-b"], await BitmapNamesAsync(client, "fmt0"));
        foreach (string name in new[] { "bm-a", "bm-b" })
        {
            JsonNode? hash = await client.ExecuteAsync("x-debug-block-dirty-bitmap-sha256", new JsonObject { ["node"] = "fmt0", ["name"] = name });
            Assert.Matches("^[0-9a-f]{64}$", (string?)hash!["sha256"]);
        }
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Transaction_with_a_failing_action_applies_none()
    {
        await using QemuProcess qemu = await StartWithQcow2Async();
        await using QmpClient client = await qemu.ConnectAsync();

        var ex = await Assert.ThrowsAsync<QmpCommandException>(() => client.TransactionAsync(
        [
            BitmapAdd("fmt0", "would-be-added"),
            BitmapAdd("no-such-node", "bm"),
        ]));

        Assert.Equal("transaction", ex.Command);
        Assert.Contains("no-such-node", ex.Description, StringComparison.Ordinal);
        Assert.Empty(await BitmapNamesAsync(client, "fmt0"));
        await Assert.ThrowsAsync<QmpCommandException>(() => client.ExecuteAsync(
            "x-debug-block-dirty-bitmap-sha256", new JsonObject { ["node"] = "fmt0", ["name"] = "would-be-added" }));
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Transaction_properties_reach_qemu()
    {
        await using QemuProcess qemu = await StartWithQcow2Async();
        await using QmpClient client = await qemu.ConnectAsync();

        // QEMU rejects grouped completion for actions without jobs, which proves the property was sent.
        var ex = await Assert.ThrowsAsync<QmpCommandException>(() => client.TransactionAsync(
            [BitmapAdd("fmt0", "grouped")], new JsonObject { ["completion-mode"] = "grouped" }));
        Assert.Contains("completion-mode", ex.Description, StringComparison.Ordinal);

        await client.TransactionAsync([BitmapAdd("fmt0", "individual")], new JsonObject { ["completion-mode"] = "individual" });
        Assert.Equal(["individual"], await BitmapNamesAsync(client, "fmt0"));
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Waiter_created_before_block_export_del_receives_BLOCK_EXPORT_DELETED()
    {
        await using QemuProcess qemu = await StartWithQcow2Async();
        await using QmpClient client = await qemu.ConnectAsync();
        await client.ExecuteAsync("nbd-server-start", new JsonObject
        {
            ["addr"] = new JsonObject { ["type"] = "unix", ["data"] = new JsonObject { ["path"] = Path.Combine(qemu.Directory, "nbd.sock") } },
        });
        foreach (string id in new[] { "exp0", "exp1" })
        {
            await client.ExecuteAsync("block-export-add", new JsonObject
            {
                ["type"] = "nbd", ["id"] = id, ["node-name"] = "fmt0", ["name"] = id, ["writable"] = false,
            });
        }

        using QmpEventSubscription subscription = client.SubscribeEvents();
        using QmpEventWaiter other = client.CreateEventWaiter("BLOCK_EXPORT_DELETED", d => (string?)d["id"] == "exp1");
        using QmpEventWaiter deleted = client.CreateEventWaiter("BLOCK_EXPORT_DELETED", d => (string?)d["id"] == "exp0");
        // QEMU sends this event before the command's reply; only a waiter armed beforehand sees it.
        await client.ExecuteAsync("block-export-del", new JsonObject { ["id"] = "exp0" });

        QmpEvent qmpEvent = await deleted.WaitAsync(TestTimeouts.Prompt);
        Assert.Equal("BLOCK_EXPORT_DELETED", qmpEvent.Name);
        Assert.Equal("exp0", (string?)qmpEvent.Data["id"]);
        Assert.InRange(qmpEvent.Timestamp, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddMinutes(5));
        Assert.False(other.WaitAsync().IsCompleted);

        QmpEvent seen = await subscription.Reader.ReadAsync().AsTask().WaitAsync(TestTimeouts.Prompt);
        Assert.Equal("BLOCK_EXPORT_DELETED", seen.Name);
        Assert.Equal("exp0", (string?)seen.Data["id"]);

        JsonNode? exports = await client.ExecuteAsync("query-block-exports");
        Assert.Equal(["exp1"], exports!.AsArray().Select(e => (string?)e!["id"]));
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Waiting_for_an_event_that_never_comes_ends_cleanly()
    {
        await using QemuProcess qemu = await StartWithQcow2Async();
        await using QmpClient client = await qemu.ConnectAsync();

        var stopwatch = Stopwatch.StartNew();
        using (var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300)))
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.WaitForEventAsync("BLOCK_JOB_COMPLETED", cancellationToken: cts.Token));
        }

        using (QmpEventWaiter waiter = client.CreateEventWaiter("BLOCK_JOB_COMPLETED"))
        {
            await Assert.ThrowsAsync<TimeoutException>(() => waiter.WaitAsync(TimeSpan.FromMilliseconds(300)));
        }

        Assert.InRange(stopwatch.Elapsed, TimeSpan.FromMilliseconds(500), TestTimeouts.Prompt);
        Assert.NotNull(await client.ExecuteAsync("query-version"));
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Fifty_concurrent_commands_each_get_their_own_result()
    {
        await using QemuProcess qemu = await StartWithQcow2Async();
        await using QmpClient client = await qemu.ConnectAsync();

        Task<(bool IsVersion, JsonNode? Result)>[] calls = [.. Enumerable.Range(0, 50).Select(i => Task.Run(async () =>
        {
            bool isVersion = i % 2 == 0;
            JsonNode? result = isVersion
                ? await client.ExecuteAsync("query-version")
                : await client.ExecuteAsync("query-named-block-nodes", new JsonObject { ["flat"] = true });
            return (isVersion, result);
        }))];
        (bool IsVersion, JsonNode? Result)[] results = await Task.WhenAll(calls).WaitAsync(TimeSpan.FromSeconds(60));

        foreach ((bool isVersion, JsonNode? result) in results)
        {
            if (isVersion)
            {
                Assert.Equal(client.Greeting.Version.Major, (int)result!["qemu"]!["major"]!);
            }
            else
            {
                Assert.Equal(["file0", "fmt0"], NodeNames(result).Order());
            }
        }
    }

    [Fact(Timeout = TestTimeouts.Test)]
    public async Task Large_replies_are_read_completely()
    {
        await using QemuProcess qemu = await StartWithQcow2Async();
        await using QmpClient client = await qemu.ConnectAsync();

        // The schema is about 100 KiB on the wire: far beyond the reader's initial buffer.
        for (int i = 0; i < 2; i++)
        {
            JsonArray schema = (await client.ExecuteAsync("query-qmp-schema"))!.AsArray();
            Assert.True(schema.ToJsonString().Length > 50_000);
            Assert.Contains(schema, entry => (string?)entry!["meta-type"] == "command" && (string?)entry["name"] == "block-export-add");
        }

        Assert.NotNull(await client.ExecuteAsync("query-version"));
    }

    internal static QmpTransactionAction BitmapAdd(string node, string name)
        => new("block-dirty-bitmap-add", new JsonObject { ["node"] = node, ["name"] = name });

    internal static IEnumerable<string?> NodeNames(JsonNode? nodes)
        => nodes!.AsArray().Select(n => (string?)n!["node-name"]);

    /// <summary>Named bitmaps of a node, sorted; the CBW filter's anonymous bitmaps are skipped.</summary>
    internal static async Task<string[]> BitmapNamesAsync(QmpClient client, string nodeName)
    {
        JsonNode? nodes = await client.ExecuteAsync("query-named-block-nodes", new JsonObject { ["flat"] = true });
        JsonNode node = nodes!.AsArray().Single(n => (string?)n!["node-name"] == nodeName)!;
        return [.. (node["dirty-bitmaps"]?.AsArray() ?? []).Select(b => (string?)b!["name"]).OfType<string>().Order()];
    }

    [GeneratedRegex(@"version (\d+\.\d+\.\d+)")]
    private static partial Regex VersionPattern();
}
