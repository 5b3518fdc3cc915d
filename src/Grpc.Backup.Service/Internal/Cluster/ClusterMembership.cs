using System.Collections.Concurrent;
using Grpc.Backup.Cluster;
using Grpc.Backup.Service.Internal.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Service.Internal.Cluster;

/// <summary>
/// This host's place in the cluster (host.conf <c>cluster-endpoints</c>): keeps one live <see cref="ClusterSession"/>,
/// registering the configured guests on it, and starts a new one when it is lost (etcd back after an outage, or a
/// lease that expired while the host was cut off). Backups take their slots through it. Fail safe: without a live
/// session no slot is granted, so no new backup starts; a backup already running finishes, and the provider's fencing
/// refuses it if another host took its slot meanwhile.
/// </summary>
internal sealed class ClusterMembership(ServiceConfiguration config, ILogger<ClusterMembership> logger) : BackgroundService
{
    private static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(1);
    private readonly ClusterSettings _settings = config.Host.Cluster ?? throw new InvalidOperationException("no cluster is configured");
    private volatile ClusterSession? _session;

    // Run records waiting to be written (the newest per task), and those of runs still going, written again whenever a
    // new session starts so the cluster never takes a live run for one a restarted host abandoned.
    private readonly ConcurrentDictionary<string, ClusterRunRecord> _unpublished = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ClusterRunRecord> _running = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _publish = new(0);

    // Null until the first revision is used: this host's own configuration alone.
    private volatile ServiceConfiguration? _current;
    private volatile string _definitionsError = "";

    /// <summary>
    /// This host's configuration with the cluster's job and storage definitions in use (the last revision it accepted;
    /// kept while etcd is away).
    /// </summary>
    public ServiceConfiguration Current => _current ?? config;

    /// <summary>Why the newest applied definitions are not in use on this host (every error, one a line), or empty.</summary>
    public string DefinitionsError => _definitionsError;

    /// <summary>
    /// Queues this host's record of a run for etcd. Never blocks or fails the run: records are written in the
    /// background while a session is live, the newest state of each run wins.
    /// </summary>
    public void PublishRun(ClusterRunRecord record)
    {
        _unpublished[record.TaskId] = record;
        if (record.State == ClusterRunRecord.Running)
        {
            _running[record.TaskId] = record;
        }
        else
        {
            _running.TryRemove(record.TaskId, out _);
        }
        _publish.Release();
    }

    public TimeSpan LeaseTtl => _settings.LeaseTtl;

    /// <summary>
    /// How long a backup waits for a live session before it fails: two lease TTLs. A new session needs a raft leader,
    /// and etcd grants no lease shorter than 1.5 election timeouts, so this covers an election (up to two election
    /// timeouts) and the request that follows it.
    /// </summary>
    private TimeSpan NoSessionPatience => 2 * _settings.LeaseTtl;

    /// <summary>The live session; waits while there is none (etcd away, or a new session starting).</summary>
    public async Task<ClusterSession> LiveSessionAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            if (_session is { Lost.IsCancellationRequested: false } live)
            {
                return live;
            }
            await Task.Delay(TimeSpan.FromMilliseconds(100), cancellationToken);
        }
    }

    /// <summary>Every host's runs (<see cref="ClusterSession.ListRunsAsync"/>); fails without a live session.</summary>
    public Task<IReadOnlyList<ClusterRunRecord>> ListRunsAsync(int limit, CancellationToken cancellationToken) =>
        LiveSessionOrThrow().ListRunsAsync(limit, cancellationToken);

    /// <summary>Every host of the cluster (<see cref="ClusterSession.ListHostsAsync"/>); fails without a live session.</summary>
    public Task<IReadOnlyList<ClusterHostStatus>> ListHostsAsync(CancellationToken cancellationToken) =>
        LiveSessionOrThrow().ListHostsAsync(cancellationToken);

    private ClusterSession LiveSessionOrThrow() => _session is { Lost.IsCancellationRequested: false } live ? live
        : throw new ClusterUnavailableException($"no live cluster session (etcd {string.Join(' ', _settings.Endpoints)})");

    private async Task PublishLoopAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            await _publish.WaitAsync(stoppingToken);
            if (_session is not { Lost.IsCancellationRequested: false } session)
            {
                // Written when the next session starts (it releases the semaphore).
                continue;
            }
            foreach (var (taskId, record) in _unpublished)
            {
                try
                {
                    await session.PublishRunAsync(record, stoppingToken);
                    // Only if no newer state came meanwhile.
                    _unpublished.TryRemove(new KeyValuePair<string, ClusterRunRecord>(taskId, record));
                }
                catch (Exception e) when (e is Grpc.Core.RpcException or ClusterSessionLostException or TimeoutException)
                {
                    logger.LogWarning("writing run {Task} to the cluster failed: {Error}", taskId, e.Message);
                    await Task.Delay(RetryDelay, stoppingToken);
                    _publish.Release();
                    break;
                }
            }
        }
    }

    /// <summary>
    /// Takes a per-host slot (host.conf <c>max-backups</c>) and one of the storage's cluster-wide slots
    /// (<c>cluster-max-backups</c>). A session lost while taking them (a leader election on a loaded etcd can keep the
    /// lease unrenewed for a TTL) is not the backup's failure: the slots are taken under the next session. Only
    /// <see cref="NoSessionPatience"/> without any live session fails the backup: no backup starts without etcd.
    /// </summary>
    public async Task<ClusterSlot> AcquireSlotAsync(StorageConfig storage, CancellationToken cancellationToken)
    {
        // Counted from the moment no live session is at hand, not from the call: waiting for a free slot is not waiting for etcd.
        long? noSessionSince = null;
        while (true)
        {
            ClusterSession? session = _session;
            if (session is not null && !session.Lost.IsCancellationRequested)
            {
                noSessionSince = null;
                try
                {
                    return await session.AcquireSlotAsync(storage.Name, storage.ClusterMaxBackups, config.Host.MaxBackups, cancellationToken);
                }
                catch (ClusterSessionLostException)
                {
                    logger.LogWarning("cluster session lost while taking a slot of storage {Storage}: taking it under the next session", storage.Name);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && session.Lost.IsCancellationRequested)
                {
                    // Lost while waiting for a slot: the slot must come from the next session.
                }
            }
            noSessionSince ??= Environment.TickCount64;
            if (Environment.TickCount64 - noSessionSince.Value >= (long)NoSessionPatience.TotalMilliseconds)
            {
                throw new ClusterUnavailableException($"no live cluster session (etcd {string.Join(' ', _settings.Endpoints)}): no new backup starts without it");
            }
            await Task.Delay(TimeSpan.FromMilliseconds(100), cancellationToken);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        Task publisher = PublishLoopAsync(stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
        await MaintainSessionAsync(stoppingToken);
        await publisher;
    }

    /// <summary>
    /// Reads the cluster's definitions and uses each new revision, until the session ends: read, then watch from the
    /// read's revision (bounded by the lease TTL, so a watch lost with its member costs one TTL), read again.
    /// </summary>
    private async Task FollowDefinitionsAsync(ClusterSession session, CancellationToken cancellationToken)
    {
        long seen = -1;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                var (definitions, readRevision) = await session.ReadDefinitionsAsync(cancellationToken);
                if (definitions.Revision != seen)
                {
                    Use(definitions, session.Options.KeyPrefix + "config/");
                    // For status --cluster: the revision in use here (the last accepted one, when this one is refused).
                    await session.SetDefinitionsRevisionAsync(Current.Cluster.Revision, cancellationToken);
                    seen = definitions.Revision;
                }
                await session.WaitForDefinitionsAsync(readRevision, _settings.LeaseTtl, cancellationToken);
            }
            catch (Grpc.Core.RpcException e)
            {
                // etcd away: the session's keeper decides whether it is lost; the definitions in use stay.
                logger.LogWarning("reading the cluster's definitions failed: {Error}", e.Message);
                await Task.Delay(RetryDelay, cancellationToken);
            }
        }
    }

    private void Use(ClusterDefinitionFiles files, string origin)
    {
        try
        {
            ServiceConfiguration next = config.WithCluster(AppliedDefinitions.Parse(files.Files, origin, files.Revision));
            _current = next;
            _definitionsError = "";
            if (files.Revision > 0)
            {
                logger.LogInformation("using the cluster's definitions of revision {Revision}: {Storages} storage(s), {Jobs} job(s)",
                    files.Revision, next.Cluster.Storages.Count, next.Cluster.Jobs.Count);
            }
        }
        catch (ConfigurationErrorsException e)
        {
            // As a host refuses a configuration directory with errors: none of this revision is used, the last good one stays.
            _definitionsError = $"revision {files.Revision} refused on this host:\n{e.Message}";
            foreach (var error in e.Errors)
            {
                logger.LogError("cluster definitions of revision {Revision} refused on this host: {Error}", files.Revision, error.Message);
            }
        }
    }

    private async Task MaintainSessionAsync(CancellationToken stoppingToken)
    {
        // The lost session's lease is revoked while the next one connects: a backup waiting for a slot waits for the
        // next session, and etcd may take seconds to answer the revoke just after an election.
        Task disposing = Task.CompletedTask;
        while (!stoppingToken.IsCancellationRequested)
        {
            ClusterSession? session = null;
            bool joined = false;
            try
            {
                session = await ClusterSession.ConnectAsync(_settings.ToOptions(config.Host.Node), logger, stoppingToken);
                await session.RegisterGuestsAsync(config.Guests.Keys, stoppingToken);
                _session = session;
                joined = true;
                foreach (var (taskId, record) in _running)
                {
                    _unpublished.TryAdd(taskId, record);
                }
                _publish.Release();
                logger.LogInformation("joined the cluster as {Node} (lease {Lease:x})", session.Node, session.LeaseId);
                using var lost = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, session.Lost);
                await FollowDefinitionsAsync(session, lost.Token).ContinueWith(_ => { }, TaskScheduler.Default);
                if (!stoppingToken.IsCancellationRequested)
                {
                    logger.LogWarning("cluster session lost: no new backup starts until etcd answers again");
                }
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning("joining the cluster failed: {Error}", e.Message);
            }
            catch (OperationCanceledException)
            {
            }
            finally
            {
                _session = null;
                if (session is not null)
                {
                    Task previous = disposing;
                    disposing = Task.WhenAll(previous, session.DisposeAsync().AsTask());
                }
            }
            if (!stoppingToken.IsCancellationRequested)
            {
                // After a lost session at once (bounded, so a lease lost again at once cannot spin); after a failed join, a second.
                await Task.Delay(joined ? TimeSpan.FromMilliseconds(100) : RetryDelay, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }
        // A clean stop revokes the lease: everything the host held goes at once.
        await disposing;
    }
}
