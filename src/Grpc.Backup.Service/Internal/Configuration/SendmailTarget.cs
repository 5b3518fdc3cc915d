using System.Net.Mail;
using Grpc.Backup.Orchestrator.Inventory;

namespace Grpc.Backup.Service.Internal.Configuration;

/// <summary>Mail through the host's sendmail (any MTA's compatible binary), as vzdump's mailto.</summary>
internal sealed record SendmailTarget(string Name, IReadOnlyList<string> MailTo, string? From, string Sendmail) : NotificationTarget(Name)
{
    public const string DefaultSendmail = "/usr/sbin/sendmail";

    internal static SendmailTarget Parse(string name, string file, IReadOnlyDictionary<string, ConfigLine> values)
    {
        RefuseUnknown(values, "mailto", "from", "sendmail");
        if (!values.TryGetValue("mailto", out ConfigLine mailtoLine))
        {
            throw new ConfigException(file, 0, "a sendmail target needs 'mailto: ADDRESS ...'");
        }
        var mailTo = ConfigValues.Words(mailtoLine).Select(a => Address(mailtoLine, a)).ToList();
        if (mailTo.Count == 0)
        {
            throw mailtoLine.Error("mailto needs at least one address");
        }
        string? from = values.TryGetValue("from", out ConfigLine fromLine) ? Address(fromLine, fromLine.Value) : null;
        // Not validated as trusted when it is the default: a host without an MTA can still start (the send then fails, logged).
        string sendmail = values.TryGetValue("sendmail", out ConfigLine sendmailLine)
            ? ConfigValues.TrustedFile(sendmailLine, sendmailLine.Value, executable: true, secret: false)
            : DefaultSendmail;
        return new SendmailTarget(name, mailTo, from, sendmail);
    }

    /// <summary>A bare address (no display name, no comment, no line break): it goes into headers and nowhere else.</summary>
    private static string Address(ConfigLine line, string text)
    {
        try
        {
            var address = new MailAddress(text);
            if (address.Address == text && !text.Any(char.IsControl))
            {
                return text;
            }
        }
        catch (FormatException)
        {
        }
        throw line.Error($"'{text}' is not a plain mail address such as root@localhost");
    }
}
