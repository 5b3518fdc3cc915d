using Grpc.Backup.Cluster;
using Google.Protobuf.WellKnownTypes;
using Grpc.Backup.Host;
using Grpc.Backup.Management.V1;
using Grpc.Backup.Orchestrator.Inventory;
using Grpc.Backup.Service.Internal.Catalog;
using Grpc.Backup.Service.Internal.Configuration;
using Grpc.Backup.Service.Internal.Engine;
using Grpc.Backup.Service.Internal.Scheduling;
using Grpc.Backup.Service.Internal.Tasks;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Service.Internal.Api;

/// <summary>The management API (protos/backup/host/v1/management.proto) over the engine, the registry and the catalog.</summary>
internal sealed class ManagementService(JobEngine engine, TaskRegistry tasks, CatalogDatabase catalog, StateRetention retention,
    ILoggerFactory loggerFactory, Cluster.ClusterMembership? cluster = null)
    : Management.V1.Management.ManagementBase
{
    private ServiceConfiguration Config => engine.Config;

    public override Task<StartTaskResponse> RunJob(RunJobRequest request, ServerCallContext context)
    {
        // One snapshot: in a cluster, applied definitions may replace the configuration meanwhile.
        ServiceConfiguration config = Config;
        JobConfig job = config.Jobs.GetValueOrDefault(request.Job) ?? throw NotFound($"no job '{request.Job}'");
        if (tasks.RunningJob(job.Name) is { } running)
        {
            throw new RpcException(new Status(StatusCode.AlreadyExists, $"job {job.Name} is already running as task {running.Id}"));
        }
        ServiceTask task = engine.StartJob(job, config);
        task.Log("INFO", "", "started by run-now");
        return Task.FromResult(new StartTaskResponse { TaskId = task.Id });
    }

    public override Task<StartTaskResponse> BackupGuests(BackupGuestsRequest request, ServerCallContext context)
    {
        if (request.GuestIds.Count == 0)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "name at least one guest"));
        }
        if (request.Priority > 9)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "priority is 0-9"));
        }
        StorageConfig storage = Storage(request.Storage);
        var guests = request.GuestIds.Distinct(StringComparer.Ordinal)
            .Select(id => Config.Guests.GetValueOrDefault(id) ?? throw NotFound($"guest '{id}' is not in the inventory")).ToList();
        var plan = new BackupPlan("", storage, guests, Config.Host.FleecingDirectory, request.BandwidthLimit, RetentionSettings.None, null, null,
            request.Priority);
        return Task.FromResult(new StartTaskResponse { TaskId = engine.Start("backup", plan).Id });
    }

    public override Task<StartTaskResponse> Restore(RestoreRequest request, ServerCallContext context)
    {
        StorageConfig storage = Storage(request.Storage);
        if (!request.TargetDirectory.StartsWith('/') || request.TargetDirectory.Split('/').Contains(".."))
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "the target must be an absolute path without '..'"));
        }
        if (request.Live)
        {
            if (request.Format is not ("" or "qcow2"))
            {
                throw new RpcException(new Status(StatusCode.InvalidArgument, "a live restore writes qcow2 disks; raw targets are not supported yet"));
            }
            if (!Path.IsPathFullyQualified(request.GuestStartProgram))
            {
                throw new RpcException(new Status(StatusCode.InvalidArgument, "a live restore needs guest_start_program, an absolute path"));
            }
            // Run as root, like a hook: only a root-owned program nobody else can change.
            if (ConfigValues.TrustedFileProblem(request.GuestStartProgram, executable: true, secret: false) is { } problem)
            {
                throw new RpcException(new Status(StatusCode.InvalidArgument, $"guest start program: {problem}"));
            }
            ServiceTask live = engine.StartLiveRestore(storage, request.ArchiveName, request.TargetDirectory, request.BandwidthLimit,
                new Orchestrator.GuestStartProgram(request.GuestStartProgram));
            return Task.FromResult(new StartTaskResponse { TaskId = live.Id });
        }
        if (request.GuestStartProgram.Length > 0)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "guest_start_program is for live restores"));
        }
        DiskFormat format = request.Format switch
        {
            "" or "raw" => DiskFormat.Raw,
            "qcow2" => DiskFormat.Qcow2,
            _ => throw new RpcException(new Status(StatusCode.InvalidArgument, $"format '{request.Format}': raw or qcow2")),
        };
        ServiceTask task = engine.StartRestore(storage, request.ArchiveName, request.TargetDirectory, format, request.BandwidthLimit);
        return Task.FromResult(new StartTaskResponse { TaskId = task.Id });
    }

    public override Task<StartTaskResponse> VerifyBackup(VerifyBackupRequest request, ServerCallContext context)
    {
        StorageConfig storage = Storage(request.Storage);
        if ((request.ArchiveName.Length > 0) == (request.LatestGuestId.Length > 0))
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "name either an archive or a guest whose latest backup to verify"));
        }
        if (request.ArchiveName.Length > 0 && Protocol.ArchiveName.Check(request.ArchiveName) is { } problem)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"archive name: {problem}"));
        }
        if (request.LatestGuestId.Length > 0 && catalog.Backups(storage.Name, request.LatestGuestId).Count == 0)
        {
            throw NotFound($"the catalog holds no backup of guest '{request.LatestGuestId}' on storage {storage.Name} (try list --refresh)");
        }
        var plan = new VerifyPlan("", storage, Empty(request.ArchiveName), request.LatestGuestId.Length > 0 ? [request.LatestGuestId] : [],
            VerifySelection.Latest);
        return Task.FromResult(new StartTaskResponse { TaskId = engine.StartVerify(plan).Id });
    }

    public override async Task<ListBackupsResponse> ListBackups(ListBackupsRequest request, ServerCallContext context)
    {
        if (request.Storage.Length > 0)
        {
            Storage(request.Storage);
        }
        if (request.Refresh)
        {
            foreach (StorageConfig storage in Config.Storages.Values.Where(s => request.Storage.Length == 0 || s.Name == request.Storage))
            {
                try
                {
                    await using var provider = await ProviderConnection.ConnectAsync(storage.Endpoint, loggerFactory: loggerFactory,
                        cancellationToken: context.CancellationToken);
                    await CatalogRefresh.RefreshAsync(catalog, provider, storage.Name, Empty(request.GuestId), context.CancellationToken);
                }
                catch (Exception e) when (e is ProviderHandshakeException or RpcException or InvalidOperationException)
                {
                    throw new RpcException(new Status(StatusCode.Unavailable, $"storage {storage.Name}: {e.Message}"));
                }
            }
        }
        var response = new ListBackupsResponse();
        IReadOnlyDictionary<string, VerificationRecord> verifications = catalog.Verifications(Empty(request.Storage));
        response.Backups.AddRange(catalog.Backups(Empty(request.Storage), Empty(request.GuestId)).Select(b => new Management.V1.Backup
        {
            Verification = verifications.GetValueOrDefault(b.Storage + "/" + b.Archive) is { } v ? ToVerification(v) : null,
            Storage = b.Storage,
            ArchiveName = b.Archive,
            GuestId = b.GuestId,
            BackupTime = Timestamp.FromDateTime(b.BackupTime),
            StoredSizeBytes = b.StoredSize,
            RestoredSizeBytes = b.RestoredSize,
            Protected = b.Protected,
            Notes = b.Notes,
            Incremental = b.Incremental,
        }));
        return response;
    }

    public override async Task<PruneResponse> Prune(PruneRequest request, ServerCallContext context)
    {
        StorageConfig storage = Storage(request.Storage);
        Retention r = request.Retention ?? new Retention();
        var policy = new Protocol.V1.RetentionPolicy
        {
            KeepLast = r.KeepLast, KeepHourly = r.KeepHourly, KeepDaily = r.KeepDaily,
            KeepWeekly = r.KeepWeekly, KeepMonthly = r.KeepMonthly, KeepYearly = r.KeepYearly,
        };
        if (policy.Equals(new Protocol.V1.RetentionPolicy()))
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "give at least one keep rule (a policy of all zeros keeps everything)"));
        }
        try
        {
            await using var provider = await ProviderConnection.ConnectAsync(storage.Endpoint, loggerFactory: loggerFactory,
                cancellationToken: context.CancellationToken);
            var pruned = await provider.Repository.PruneBackupsAsync(new Protocol.V1.PruneBackupsRequest
            {
                GuestId = request.GuestId,
                Policy = policy,
                DryRun = request.DryRun,
            }, deadline: ProviderDeadlines.FromNow(ProviderDeadlines.Preparation), cancellationToken: context.CancellationToken);
            await CatalogRefresh.RefreshAsync(catalog, provider, storage.Name, Empty(request.GuestId), context.CancellationToken);
            retention.Apply();
            var response = new PruneResponse();
            response.Decisions.AddRange(pruned.Decisions.Select(d => new PruneResponse.Types.Decision { ArchiveName = d.ArchiveName, Keep = d.Keep, Reason = d.Reason }));
            return response;
        }
        catch (ProviderHandshakeException e)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, $"storage {storage.Name}: {e.Message}"));
        }
    }

    public override Task<CancelResponse> Cancel(CancelRequest request, ServerCallContext context)
    {
        ServiceTask task = tasks.Find(request.TaskId) ?? throw NotFound($"no task '{request.TaskId}'");
        task.Cancel();
        return Task.FromResult(new CancelResponse());
    }

    public override async Task<GetStatusResponse> GetStatus(GetStatusRequest request, ServerCallContext context)
    {
        var response = new GetStatusResponse
        {
            Node = Config.Host.Node,
            MaxConcurrentBackups = engine.Slots.Limit,
            RunningBackups = engine.Slots.Running,
            ClusterDefinitionsRevision = Config.Cluster.Revision,
            ClusterDefinitionsError = cluster?.DefinitionsError ?? "",
        };
        response.Tasks.AddRange(tasks.All.Select(t => t.Info()));
        response.Jobs.AddRange(Jobs());
        if (request.Cluster)
        {
            IReadOnlyList<ClusterHostStatus> hosts = await ReadClusterAsync(c => c.ListHostsAsync(context.CancellationToken));
            response.ClusterHosts.AddRange(hosts.Select(h =>
            {
                var host = new ClusterHost { Node = h.Node, Alive = h.Alive, DefinitionsRevision = h.DefinitionsRevision };
                host.Guests.AddRange(h.Guests);
                host.Running.AddRange(h.Running.Select(ToInfo));
                return host;
            }));
        }
        return response;
    }

    public override Task<ListJobsResponse> ListJobs(ListJobsRequest request, ServerCallContext context)
    {
        var response = new ListJobsResponse();
        response.Jobs.AddRange(Jobs());
        return Task.FromResult(response);
    }

    public override async Task<ListProvidersResponse> ListProviders(ListProvidersRequest request, ServerCallContext context)
    {
        var response = new ListProvidersResponse();
        foreach (StorageConfig storage in Config.Storages.Values.OrderBy(s => s.Name, StringComparer.Ordinal))
        {
            var info = new Management.V1.ProviderInfo { Storage = storage.Name, Endpoint = storage.Endpoint.ToString() };
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken);
                timeout.CancelAfter(TimeSpan.FromSeconds(15));
                await using var provider = await ProviderConnection.ConnectAsync(storage.Endpoint, loggerFactory: loggerFactory, cancellationToken: timeout.Token);
                info.Healthy = true;
                info.Name = provider.Info.Name;
                info.Version = provider.Info.VendorVersion;
                info.ProtocolMajor = provider.NegotiatedMajor;
                info.Capabilities.AddRange(provider.Capabilities.VmBackupMechanisms.Select(m => $"vm-backup:{m}"));
                info.Capabilities.AddRange(provider.Capabilities.ContainerBackupMechanisms.Select(m => $"ct-backup:{m}"));
                info.Capabilities.AddRange(provider.Capabilities.RepositoryOperations.Select(m => $"repository:{m}"));
                if (provider.Capabilities.IncrementalVmBackup)
                {
                    info.Capabilities.Add("incremental");
                }
            }
            catch (Exception e) when (e is ProviderHandshakeException or RpcException or OperationCanceledException)
            {
                info.Healthy = false;
                info.Error = e.Message;
            }
            response.Providers.Add(info);
        }
        return response;
    }

    public override async Task<ListRunsResponse> ListRuns(ListRunsRequest request, ServerCallContext context)
    {
        int limit = request.Limit == 0 ? 20 : (int)Math.Min(request.Limit, 1000);
        var response = new ListRunsResponse();
        if (!request.Cluster)
        {
            response.Runs.AddRange(catalog.RecentRuns(limit).Select(ToInfo));
            return response;
        }
        IReadOnlyList<ClusterRunRecord> runs = await ReadClusterAsync(c => c.ListRunsAsync(limit, context.CancellationToken));
        response.Runs.AddRange(runs.Select(ToInfo));
        return response;
    }

    /// <summary>A read of the cluster's state in etcd, its failures as the API documents them.</summary>
    private async Task<T> ReadClusterAsync<T>(Func<Cluster.ClusterMembership, Task<T>> read)
    {
        if (cluster is null)
        {
            throw new RpcException(new Status(StatusCode.FailedPrecondition, "this host is not in a cluster (no cluster-endpoints in host.conf)"));
        }
        try
        {
            return await read(cluster);
        }
        catch (Exception e) when (e is Cluster.ClusterUnavailableException or RpcException { StatusCode: StatusCode.Unavailable or StatusCode.DeadlineExceeded })
        {
            throw new RpcException(new Status(StatusCode.Unavailable, $"the cluster's records cannot be read: {e.Message}"));
        }
    }

    public override async Task Watch(WatchRequest request, IServerStreamWriter<TaskEvent> responseStream, ServerCallContext context)
    {
        ServiceTask task = tasks.Find(request.TaskId) ?? throw NotFound($"no task '{request.TaskId}'");
        await foreach (TaskEvent e in task.WatchAsync(context.CancellationToken))
        {
            await responseStream.WriteAsync(e, context.CancellationToken);
        }
    }

    private IEnumerable<JobInfo> Jobs()
    {
        DateTime now = DateTime.UtcNow;
        ServiceConfiguration config = Config;
        foreach (JobConfig job in config.Jobs.Values.OrderBy(j => j.Name, StringComparer.Ordinal))
        {
            var info = new JobInfo
            {
                Name = job.Name, Storage = job.Storage, Schedule = job.ScheduleText ?? "", Enabled = job.Enabled, Priority = job.Priority,
                ClusterRevision = config.IsClusterJob(job.Name) ? config.Cluster.Revision : 0,
            };
            if (job.Enabled && JobScheduler.NextAfter(job, now) is { } next)
            {
                info.NextRun = Timestamp.FromDateTime(next);
            }
            if (catalog.LastRunOf(job.Name) is { } last)
            {
                info.LastRun = Timestamp.FromDateTime(last.Started);
                info.LastState = ParseState(last.State);
            }
            yield return info;
        }
    }

    private static TaskInfo ToInfo(ClusterRunRecord run)
    {
        var info = new TaskInfo
        {
            Node = run.Node, TaskId = run.TaskId, Kind = run.Kind, Job = run.Job, State = ParseState(run.State),
            Created = Timestamp.FromDateTime(DateTime.SpecifyKind(run.Started, DateTimeKind.Utc)), Error = run.Error,
        };
        if (run.Ended is { } ended)
        {
            info.Ended = Timestamp.FromDateTime(DateTime.SpecifyKind(ended, DateTimeKind.Utc));
        }
        info.Guests.AddRange(run.Guests.Select(g => new GuestResult { GuestId = g.GuestId, State = ParseState(g.State), ArchiveName = g.Archive, Error = g.Error }));
        return info;
    }

    private static TaskInfo ToInfo(RunRecord run)
    {
        var info = new TaskInfo
        {
            TaskId = run.TaskId,
            Kind = run.Kind,
            Job = run.Job,
            State = ParseState(run.State),
            Created = Timestamp.FromDateTime(run.Started),
            Error = run.Error,
        };
        if (run.Ended is { } ended)
        {
            info.Ended = Timestamp.FromDateTime(ended);
        }
        info.Guests.AddRange(run.Guests.Select(g =>
        {
            var result = new GuestResult
            {
                GuestId = g.GuestId, State = ParseState(g.State), ArchiveName = g.Archive, Error = g.Error, Consistency = g.Consistency,
                BytesRead = g.BytesRead, ArchiveSizeBytes = g.ArchiveSize, DurationSeconds = g.DurationSeconds,
            };
            result.BitmapModes.AddRange(g.BitmapModes);
            return result;
        }));
        return info;
    }

    private static Management.V1.Verification ToVerification(VerificationRecord record) => new()
    {
        State = record.State switch
        {
            VerificationRecord.Verified => VerificationState.Verified,
            VerificationRecord.Failed => VerificationState.Failed,
            _ => VerificationState.NotVerifiable,
        },
        Time = Timestamp.FromDateTime(record.Time),
        Detail = record.Detail,
        TaskId = record.TaskId,
    };

    private static TaskState ParseState(string state) => state switch
    {
        "succeeded" => TaskState.Succeeded,
        "failed" => TaskState.Failed,
        "cancelled" => TaskState.Cancelled,
        "running" => TaskState.Running,
        _ => TaskState.Queued,
    };

    private StorageConfig Storage(string name) => Config.Storages.GetValueOrDefault(name) ?? throw NotFound($"no storage '{name}'");

    private static string? Empty(string text) => text.Length == 0 ? null : text;

    private static RpcException NotFound(string message) => new(new Status(StatusCode.NotFound, message));
}
