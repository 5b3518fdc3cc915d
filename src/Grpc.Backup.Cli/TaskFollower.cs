using Google.Protobuf;
using Grpc.Backup.Management.V1;
using Grpc.Core;
using Spectre.Console;

namespace Grpc.Backup.Cli;

/// <summary>
/// Follows a service task to its end through Watch. On a terminal: a live progress bar per disk (bytes, rate, ETA)
/// with the log lines above it. Piped: one plain line per log line. With --json: only the final task as JSON on
/// stdout. Ctrl-C asks the service to cancel the task (teardown runs there) and keeps following until it ends.
/// </summary>
internal static class TaskFollower
{
    public static async Task<int> FollowAsync(ServiceClient client, string taskId, bool json, CancellationToken cancellationToken)
    {
        // Ctrl-C cancels the task, not the watch: the command returns only when the service says the task ended.
        await using var registration = cancellationToken.Register(() =>
        {
            Console.Error.WriteLine($"grpc-backup: cancelling task {taskId}");
            _ = client.Management.CancelAsync(new CancelRequest { TaskId = taskId }).ResponseAsync;
        });
        using var call = client.Management.Watch(new WatchRequest { TaskId = taskId }, cancellationToken: CancellationToken.None);
        TaskInfo? ended = json || Console.IsOutputRedirected || !AnsiConsole.Profile.Capabilities.Interactive
            ? await FollowPlainAsync(call.ResponseStream, json)
            : await FollowLiveAsync(call.ResponseStream);
        if (ended is null)
        {
            await Console.Error.WriteLineAsync($"grpc-backup: the watch of task {taskId} ended without the task's end");
            return ExitCodes.Failure;
        }
        if (json)
        {
            Console.WriteLine(JsonFormatter.Default.Format(ended));
        }
        else
        {
            PrintSummary(ended);
        }
        return ServiceClient.ExitCodeOf(ended.State);
    }

    private static async Task<TaskInfo?> FollowPlainAsync(IAsyncStreamReader<TaskEvent> events, bool json)
    {
        await foreach (TaskEvent e in events.ReadAllAsync())
        {
            switch (e.EventCase)
            {
                case TaskEvent.EventOneofCase.Log when !json:
                    Console.WriteLine(Format(e.Log));
                    break;
                case TaskEvent.EventOneofCase.Ended:
                    return e.Ended.Task;
            }
        }
        return null;
    }

    private static async Task<TaskInfo?> FollowLiveAsync(IAsyncStreamReader<TaskEvent> events)
    {
        TaskInfo? ended = null;
        await AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(),
                new TransferSpeedColumn(), new RemainingTimeColumn())
            .StartAsync(async context =>
            {
                var bars = new Dictionary<string, ProgressTask>(StringComparer.Ordinal);
                await foreach (TaskEvent e in events.ReadAllAsync())
                {
                    switch (e.EventCase)
                    {
                        case TaskEvent.EventOneofCase.Log:
                            AnsiConsole.MarkupLine(Markup.Escape(Format(e.Log)));
                            break;
                        case TaskEvent.EventOneofCase.Progress:
                            Management.V1.Progress p = e.Progress;
                            string key = $"{p.GuestId} {p.DeviceName}";
                            if (!bars.TryGetValue(key, out ProgressTask? bar))
                            {
                                bar = context.AddTask(Markup.Escape(key), maxValue: Math.Max(1, p.BytesTotal));
                                bars[key] = bar;
                            }
                            bar.MaxValue = Math.Max(1, p.BytesTotal);
                            bar.Value = p.BytesDone;
                            break;
                        case TaskEvent.EventOneofCase.Ended:
                            foreach (ProgressTask bar2 in bars.Values)
                            {
                                bar2.StopTask();
                            }
                            ended = e.Ended.Task;
                            return;
                    }
                }
            });
        return ended;
    }

    private static string Format(LogLine line) =>
        $"{line.Time.ToDateTime().ToLocalTime():HH:mm:ss} {line.Level,-5} {(line.GuestId.Length > 0 ? line.GuestId + ": " : "")}{line.Message}";

    private static void PrintSummary(TaskInfo task)
    {
        foreach (GuestResult g in task.Guests)
        {
            string detail = g.State == TaskState.Succeeded
                ? $"{g.ArchiveName} ({g.Consistency}; {string.Join(", ", g.BitmapModes)}; read {g.BytesRead} bytes; {g.DurationSeconds:F1} s)"
                : g.Error;
            Console.WriteLine($"{g.GuestId}: {Names.Of(g.State)} {detail}");
        }
        Console.WriteLine($"task {task.TaskId}: {Names.Of(task.State)}{(task.Error.Length > 0 ? ": " + task.Error : "")}");
    }
}
