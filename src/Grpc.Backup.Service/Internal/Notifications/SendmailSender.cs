using System.Globalization;
using System.Text;
using Grpc.Backup.Service.Internal.Configuration;
using Grpc.Backup.Transport;

namespace Grpc.Backup.Service.Internal.Notifications;

/// <summary>
/// Hands the report to the host's MTA as <c>sendmail -t -oi</c>: recipients are read from the message's headers, so
/// nothing of the report travels in argv; a line of a single dot does not end the message early.
/// </summary>
internal static class SendmailSender
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(1);

    public static async Task SendAsync(SendmailTarget target, JobReport report, CancellationToken cancellationToken)
    {
        ExternalProcess process;
        try
        {
            process = ExternalProcess.Start(target.Sendmail, ["-t", "-oi"],
                new ExternalProcessOptions { CaptureStandardOutput = true, StandardInput = Message(target, report) });
        }
        catch (ExternalProcessException e)
        {
            throw new InvalidOperationException($"sendmail {target.Name}: {target.Sendmail} could not be started", e);
        }
        await using var owned = process;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(Timeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Disposing kills it.
            throw new TimeoutException($"sendmail {target.Name}: {target.Sendmail} did not finish in {Timeout.TotalSeconds} s");
        }
        if (process.ExitCode != 0)
        {
            string said = (process.StandardOutput + process.ErrorOutput).Trim();
            throw new InvalidOperationException($"sendmail {target.Name}: {target.Sendmail} exited with status {process.ExitCode}"
                + (said.Length > 0 ? ": " + said[..Math.Min(said.Length, 500)] : ""));
        }
    }

    internal static string Message(SendmailTarget target, JobReport report)
    {
        var message = new StringBuilder();
        message.Append(CultureInfo.InvariantCulture, $"From: {target.From ?? "grpc-backup@" + report.Node}\n");
        message.Append(CultureInfo.InvariantCulture, $"To: {string.Join(", ", target.MailTo)}\n");
        message.Append(CultureInfo.InvariantCulture, $"Subject: {HeaderText(JobReportFormat.Subject(report))}\n");
        message.Append(CultureInfo.InvariantCulture, $"Date: {report.Ended.ToString("r", CultureInfo.InvariantCulture)}\n");
        message.Append("MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n");
        message.Append(CultureInfo.InvariantCulture, $"X-Grpc-Backup-Event: {report.Event}\nX-Grpc-Backup-State: {report.State}\n\n");
        message.Append(JobReportFormat.Text(report));
        return message.ToString();
    }

    /// <summary>Names come from configuration, but a header must stay one line whatever they hold.</summary>
    private static string HeaderText(string text) => new(text.Select(c => char.IsControl(c) ? ' ' : c).ToArray());
}
