using System.Globalization;
using System.Text;
using System.Text.Json;
using Grpc.Backup.Management.V1;

namespace Grpc.Backup.Service.Internal.Notifications;

/// <summary>The report as the webhook's JSON body and as a mail's subject and text.</summary>
internal static class JobReportFormat
{
    public static byte[] Json(JobReport report)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = false }))
        {
            json.WriteStartObject();
            json.WriteString("event", report.Event);
            json.WriteString("job", report.Job);
            json.WriteString("jobId", report.JobId);
            json.WriteString("taskId", report.TaskId);
            json.WriteString("storage", report.Storage);
            json.WriteString("node", report.Node);
            json.WriteString("state", report.State);
            json.WriteString("error", report.Error);
            json.WriteString("started", report.Started);
            json.WriteString("ended", report.Ended);
            json.WriteStartArray("guests");
            foreach (GuestResult guest in report.Guests)
            {
                json.WriteStartObject();
                json.WriteString("guestId", guest.GuestId);
                json.WriteString("state", GuestState(guest.State));
                json.WriteString("archiveName", guest.ArchiveName);
                json.WriteNumber("bytesRead", guest.BytesRead);
                json.WriteNumber("archiveSizeBytes", guest.ArchiveSizeBytes);
                json.WriteNumber("durationSeconds", Math.Round(guest.DurationSeconds, 3));
                json.WriteString("error", guest.Error);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        return buffer.ToArray();
    }

    public static string Subject(JobReport report) => report.Event == JobReport.JobInitFailed
        ? $"grpc-backup {report.Node}: job {Name(report)} could not start on {report.Storage}"
        : report.Event == JobReport.VerifyEnd ? $"grpc-backup {report.Node}: verify {Name(report)} {report.State}"
        : $"grpc-backup {report.Node}: job {Name(report)} {report.State}";

    public static string Text(JobReport report)
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"Job:      {Name(report)} (task {report.TaskId})\n");
        text.Append(CultureInfo.InvariantCulture, $"Storage:  {report.Storage}\nNode:     {report.Node}\nState:    {report.State}\n");
        text.Append(CultureInfo.InvariantCulture, $"Started:  {report.Started:u}\nEnded:    {report.Ended:u}\n");
        if (report.Error.Length > 0)
        {
            text.Append(CultureInfo.InvariantCulture, $"Error:    {report.Error}\n");
        }
        if (report.Guests.Count > 0)
        {
            text.Append("\nGuest      State       Duration  Read        Archive     Name / error\n");
            foreach (GuestResult guest in report.Guests)
            {
                string what = guest.Error.Length > 0 ? guest.Error : guest.ArchiveName;
                text.Append(CultureInfo.InvariantCulture,
                    $"{guest.GuestId,-10} {GuestState(guest.State),-11} {guest.DurationSeconds,7:0.0}s  {Size(guest.BytesRead),-10}  {Size(guest.ArchiveSizeBytes),-10}  {what}\n");
            }
        }
        return text.ToString();
    }

    private static string Name(JobReport report) => report.Job.Length > 0 ? report.Job : "(one-off)";

    private static string GuestState(TaskState state) => Engine.JobEngine.StateName(state);

    private static string Size(ulong bytes) => bytes switch
    {
        >= 1UL << 30 => $"{bytes / (double)(1UL << 30):0.00} GiB",
        >= 1UL << 20 => $"{bytes / (double)(1UL << 20):0.0} MiB",
        _ => $"{bytes} B",
    };
}
