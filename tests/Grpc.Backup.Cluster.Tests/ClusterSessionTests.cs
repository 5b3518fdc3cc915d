using Grpc.Backup.Cluster.Tests.Infrastructure;

namespace Grpc.Backup.Cluster.Tests;

/// <summary>Slots, leases, registrations and the election against a real etcd 3.4, two or three "hosts" as sessions.</summary>
public sealed class ClusterSessionTests
{
    private static Task<ClusterSession> JoinAsync(EtcdCluster etcd, string node, TimeSpan? ttl = null) =>
        ClusterSession.ConnectAsync(new ClusterOptions { Endpoints = etcd.Endpoints, Node = node, LeaseTtl = ttl ?? TimeSpan.FromSeconds(10) });

    [Fact]
    public async Task SlotLimitsHoldAcrossTwoHosts()
    {
        await using EtcdCluster etcd = await EtcdCluster.StartAsync();
        await using ClusterSession a = await JoinAsync(etcd, "host-a");
        await using ClusterSession b = await JoinAsync(etcd, "host-b");
        int running = 0, maxRunning = 0;
        var perHost = new Dictionary<string, int> { ["host-a"] = 0, ["host-b"] = 0 };
        var maxPerHost = new Dictionary<string, int> { ["host-a"] = 0, ["host-b"] = 0 };
        var gate = new Lock();
        var tokens = new List<(string Slot, long Revision)>();
        // Set once three run at once. Until then every holder keeps its slot, so the limit is reached whatever the
        // load (a fixed "backup" time let a slow machine finish one before the third began).
        var full = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        // 2 per host would allow 4 at once: only the storage's cluster-wide limit of 3 holds them to 3.
        async Task BackupAsync(ClusterSession host)
        {
            await using ClusterSlot slot = await host.AcquireSlotAsync("shared", storageLimit: 3, hostLimit: 2);
            lock (gate)
            {
                tokens.Add((slot.SlotName, slot.Revision));
                maxRunning = Math.Max(maxRunning, ++running);
                maxPerHost[host.Node] = Math.Max(maxPerHost[host.Node], ++perHost[host.Node]);
                if (running == 3)
                {
                    full.TrySetResult();
                }
            }
            // The "backup": until the limit was reached once, then long enough for the others to pile up behind it.
            await full.Task.WaitAsync(TimeSpan.FromMinutes(2));
            await Task.Delay(150);
            lock (gate)
            {
                running--;
                perHost[host.Node]--;
            }
        }
        await Task.WhenAll(Enumerable.Range(0, 8).Select(i => BackupAsync(i % 2 == 0 ? a : b)));

        Assert.Equal(3, maxRunning);
        // Three at once on two hosts: one of them ran two, and neither ever ran more.
        Assert.Equal(2, maxPerHost.Values.Max());
        Assert.All(maxPerHost.Values, n => Assert.InRange(n, 1, 2));
        Assert.Equal(8, tokens.Count);
        // Every later holder of a slot has a larger token than every earlier one (etcd revisions only grow).
        foreach (var group in tokens.GroupBy(t => t.Slot))
        {
            Assert.Equal(group.Select(t => t.Revision).Order(), group.Select(t => t.Revision));
        }
        Assert.Empty(await a.ListSlotsAsync("storage/shared"));
        Assert.Empty(await a.ListSlotsAsync("host/host-a"));
    }

    [Fact]
    public async Task AScheduledTimeFiresOnceWhoeverFiresIt()
    {
        await using EtcdCluster etcd = await EtcdCluster.StartAsync();
        await using ClusterSession a = await JoinAsync(etcd, "host-a");
        await using ClusterSession b = await JoinAsync(etcd, "host-b");
        var (none, start) = await b.ReadFiresAsync(long.MaxValue - 1);
        Assert.Empty(none);
        Assert.Null(await b.LastFiredAsync("nightly"));
        var at = new DateTime(2026, 12, 7, 2, 0, 0, DateTimeKind.Utc);
        // Two schedulers (an old leader that paused and the new one) fire the same time: it fires once.
        bool[] fired = await Task.WhenAll(a.FireAsync("nightly", at, "schedule"), b.FireAsync("nightly", at, "repeat-missed"));
        Assert.Single(fired, f => f);
        Assert.False(await a.FireAsync("nightly", at, "schedule"));
        Assert.Equal(at, await b.LastFiredAsync("nightly"));
        var fire = Assert.Single((await b.ReadFiresAsync(start)).Fires);
        Assert.Equal(("nightly", at), (fire.Job, fire.Scheduled));
        Assert.Equal(fired[0] ? "host-a" : "host-b", fire.Leader);
        // Bounded: each job keeps its newest fires; the newest time stays recorded.
        for (int day = 1; day <= ClusterSession.FiresKept + 2; day++)
        {
            Assert.True(await a.FireAsync("nightly", at.AddDays(day), "schedule"));
        }
        var (kept, _) = await b.ReadFiresAsync(start);
        Assert.Equal(ClusterSession.FiresKept, kept.Count);
        Assert.Equal(at.AddDays(ClusterSession.FiresKept + 2), kept[^1].Scheduled);
        Assert.Equal(at.AddDays(ClusterSession.FiresKept + 2), await b.LastFiredAsync("nightly"));
    }

    [Fact]
    public async Task AHostWhoseLeaseExpiresFreesItsSlots()
    {
        await using EtcdCluster etcd = await EtcdCluster.StartAsync();
        await using ClusterSession a = await JoinAsync(etcd, "host-a", TimeSpan.FromSeconds(3));
        await using ClusterSession b = await JoinAsync(etcd, "host-b");
        ClusterSlot held = await a.AcquireSlotAsync("shared", storageLimit: 1, hostLimit: 0);
        Task<ClusterSlot> waiting = b.AcquireSlotAsync("shared", storageLimit: 1, hostLimit: 0);
        await Poll.UntilAsync(async () => (await b.ListSlotsAsync("storage/shared")).Values.SequenceEqual(["host-a"]), TimeSpan.FromSeconds(30), "a holding");
        Assert.False(waiting.IsCompleted);

        // host-a freezes: nobody renews its lease, etcd expires it, and its slot goes with it.
        await a.StopRenewingAsync();
        await using ClusterSlot taken = await waiting.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(held.SlotName, taken.SlotName);
        Assert.True(taken.Revision > held.Revision, $"the new holder's token {taken.Revision} must exceed the lost holder's {held.Revision}");
        Assert.Equal(["host-b"], (await b.ListSlotsAsync("storage/shared")).Values);

        // host-a learns it is lost only from the keepalive it no longer sends: a new session is the way back.
        await held.DisposeAsync();
        Assert.Equal(["host-b"], (await b.ListSlotsAsync("storage/shared")).Values);
    }

    [Fact]
    public async Task ASessionThatSeesItsLeaseGoneIsLostAndTakesNoSlot()
    {
        await using EtcdCluster etcd = await EtcdCluster.StartAsync();
        await using ClusterSession a = await JoinAsync(etcd, "host-a", TimeSpan.FromSeconds(3));
        (int code, _, string stderr) = await etcd.CtlAsync("lease", "revoke", a.LeaseId.ToString("x", System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(code == 0, stderr);
        await Poll.UntilAsync(() => Task.FromResult(a.Lost.IsCancellationRequested), TimeSpan.FromSeconds(30), "the session noticing its lease is gone");
        await Assert.ThrowsAsync<ClusterSessionLostException>(() => a.AcquireSlotAsync("shared", 1, 1));
    }

    [Fact]
    public async Task ASlotCallCutOffByTheLostLeaseEndsAsALostSessionNotAnEtcdError()
    {
        // What a raft leader election on a loaded etcd does to a slot's transaction: no answer while the lease goes
        // unrenewed for a TTL. Frozen etcd, deterministically: the call is in flight when the session is declared lost.
        await using EtcdCluster etcd = await EtcdCluster.StartAsync();
        await using ClusterSession a = await JoinAsync(etcd, "host-a", TimeSpan.FromSeconds(3));
        etcd.Members[0].Process!.Signal("STOP");
        try
        {
            Task<ClusterSlot> taking = a.AcquireSlotAsync("shared", 1, 1);
            // Before: the RpcException (Cancelled) of the cut-off call, which failed the backup instead of waiting for the next session.
            await Assert.ThrowsAsync<ClusterSessionLostException>(() => taking.WaitAsync(TimeSpan.FromSeconds(60)));
            Assert.True(a.Lost.IsCancellationRequested);
        }
        finally
        {
            etcd.Members[0].Process!.Signal("CONT");
        }
    }

    [Fact]
    public async Task AClosedSessionFreesItsSlotsAndRegistrationsAtOnce()
    {
        await using EtcdCluster etcd = await EtcdCluster.StartAsync();
        await using ClusterSession b = await JoinAsync(etcd, "host-b");
        ClusterSession a = await JoinAsync(etcd, "host-a", TimeSpan.FromSeconds(60));
        await a.RegisterGuestsAsync(["100", "101"]);
        await b.RegisterGuestsAsync(["200"]);
        await a.AcquireSlotAsync("shared", 1, 1);
        var guests = await b.ListGuestsAsync();
        Assert.Equal(["100", "101"], guests["host-a"]);
        Assert.Equal(["200"], guests["host-b"]);
        Assert.Equal(["host-a", "host-b"], await b.ListNodesAsync());

        // Re-registering drops what the host no longer runs.
        await a.RegisterGuestsAsync(["101"]);
        Assert.Equal(["101"], (await b.ListGuestsAsync())["host-a"]);

        // status --cluster's view: each host alive with its guests, its definitions revision and its unfinished run.
        await a.SetDefinitionsRevisionAsync(7);
        await a.PublishRunAsync(new ClusterRunRecord
        {
            Node = "host-a", TaskId = "t1", Kind = "job", Started = DateTime.UtcNow, State = ClusterRunRecord.Running,
            Guests = [new ClusterGuestResult("101", ClusterRunRecord.Running, "", "")],
        });
        Assert.Equal([("host-a", true, 7L, "101", "running"), ("host-b", true, 0L, "200", "")],
            (await b.ListHostsAsync()).Select(h => (h.Node, h.Alive, h.DefinitionsRevision, string.Join(' ', h.Guests), string.Join(' ', h.Running.Select(r => r.State)))));

        Task<ClusterSlot> waiting = b.AcquireSlotAsync("shared", 1, 1);
        await a.DisposeAsync();
        // Revoked, not expired: well inside host-a's 60 s TTL.
        await using ClusterSlot taken = await waiting.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.False((await b.ListGuestsAsync()).ContainsKey("host-a"));
        Assert.Equal(["host-b"], await b.ListNodesAsync());
        // A host that is gone: only its run record is left, its unfinished run failed with the reason.
        ClusterHostStatus gone = (await b.ListHostsAsync())[0];
        Assert.Equal(("host-a", false, 0L, 0), (gone.Node, gone.Alive, gone.DefinitionsRevision, gone.Guests.Count));
        Assert.Contains("left the cluster", Assert.Single(gone.Running).Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WorkGoesOnThroughTheOtherMembersWhenOneDies()
    {
        await using EtcdCluster etcd = await EtcdCluster.StartAsync(members: 3);
        await using ClusterSession a = await JoinAsync(etcd, "host-a", TimeSpan.FromSeconds(6));
        await using (ClusterSlot before = await a.AcquireSlotAsync("shared", 1, 1))
        {
            Assert.True(before.Revision > 0);
        }
        // kill -9 of the first member, the one the client's channel was likely using.
        etcd.Members[0].Process!.Signal("KILL");
        await etcd.Members[0].Process!.WaitForExitAsync(TimeSpan.FromSeconds(30));
        await using ClusterSlot after = await a.AcquireSlotAsync("shared", 1, 1).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.True(after.Revision > 0);
        // The lease is still renewed through the survivors: two whole TTLs later the session is alive and holds the slot.
        DateTime until = DateTime.UtcNow + TimeSpan.FromSeconds(12);
        await Poll.UntilAsync(() => Task.FromResult(DateTime.UtcNow > until || a.Lost.IsCancellationRequested), TimeSpan.FromSeconds(60), "two TTLs passing");
        Assert.False(a.Lost.IsCancellationRequested, "the session was lost with one of three members down");
        Assert.Equal(["host-a"], (await a.ListSlotsAsync("storage/shared")).Values);
    }

    [Fact]
    public async Task TheElectionPicksExactlyOneAndPassesOnWhenTheLeaderGoes()
    {
        await using EtcdCluster etcd = await EtcdCluster.StartAsync();
        ClusterSession[] hosts = [await JoinAsync(etcd, "host-a"), await JoinAsync(etcd, "host-b"), await JoinAsync(etcd, "host-c")];
        try
        {
            Task<ClusterLeadership>[] campaigns = [.. hosts.Select(h => h.CampaignAsync("scheduler"))];
            await await Task.WhenAny(campaigns).WaitAsync(TimeSpan.FromSeconds(30));
            int first = Array.FindIndex(campaigns, c => c.IsCompleted);
            Assert.Equal(hosts[first].Node, await hosts[0].LeaderAsync("scheduler"));
            // The others are still campaigning once etcd has named the leader.
            Assert.Equal(1, campaigns.Count(c => c.IsCompleted));

            // The leader's host dies (its lease is revoked): exactly one other takes over.
            await hosts[first].DisposeAsync();
            Task<ClusterLeadership>[] rest = [.. campaigns.Where((_, i) => i != first)];
            await await Task.WhenAny(rest).WaitAsync(TimeSpan.FromSeconds(30));
            int second = Array.FindIndex(campaigns, c => c.IsCompleted && c != campaigns[first]);
            string? leader = await hosts[0 == first ? 1 : 0].LeaderAsync("scheduler");
            Assert.Equal(hosts[second].Node, leader);
            Assert.Equal(1, rest.Count(c => c.IsCompleted));
            ClusterLeadership firstLeader = await campaigns[first], secondLeader = await campaigns[second];
            Assert.True(secondLeader.Revision > firstLeader.Revision);

            // A resignation hands over at once, too.
            await secondLeader.DisposeAsync();
            await Task.WhenAll(rest).WaitAsync(TimeSpan.FromSeconds(30));
        }
        finally
        {
            foreach (ClusterSession host in hosts)
            {
                await host.DisposeAsync();
            }
        }
    }
}
