using Grpc.Backup.Service.Internal.Configuration;
using Grpc.Backup.Service.Internal.Tasks;

namespace Grpc.Backup.Service.Internal.Notifications;

/// <summary>
/// Tells a run's targets how it ended. A notification never changes a job's outcome: a target that fails is logged
/// in the task (by name) and the others are still tried.
/// </summary>
internal sealed class JobNotifier(TimeSpan webhookRetryDelay)
{
    private readonly WebhookSender _webhooks = new(webhookRetryDelay);

    public JobNotifier()
        : this(TimeSpan.FromSeconds(2))
    {
    }

    public async Task NotifyAsync(ServiceTask task, IReadOnlyList<NotificationTarget> targets, bool onFailureOnly, JobReport report)
    {
        if (targets.Count == 0 || (onFailureOnly && report.Succeeded))
        {
            return;
        }
        // Its own deadline: a cancelled job is still reported.
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await Task.WhenAll(targets.Select(async target =>
        {
            try
            {
                await (target switch
                {
                    WebhookTarget webhook => _webhooks.SendAsync(webhook, report, timeout.Token),
                    SendmailTarget mail => SendmailSender.SendAsync(mail, report, timeout.Token),
                    _ => throw new NotSupportedException(target.GetType().Name),
                }).ConfigureAwait(false);
                task.Log("INFO", "", $"notified {target.Name} ({report.Event}, {report.State})");
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                task.Log("WARN", "", $"notification {target.Name} failed: {e.Message}");
            }
        })).ConfigureAwait(false);
    }
}
