using System.Diagnostics;
using System.Text.Json;

namespace Grpc.Backup.Providers.Borg.Internal;

/// <summary>
/// Starts borg with an argument list (never a shell) and an environment built from scratch. Secrets never appear in
/// argv or in the environment by value: the passphrase comes from BORG_PASSCOMMAND (<c>cat FILE</c>, a path), the SSH
/// key through BORG_RSH (<c>ssh -i FILE</c>, a path). Nothing of the provider's own environment is inherited, so a
/// BORG_PASSPHRASE set by someone else cannot leak into a child either.
/// </summary>
internal sealed class BorgCli(BorgProviderOptions options)
{
    public BorgProviderOptions Options => options;

    /// <summary>The repository as borg names it.</summary>
    public string Repository => options.Repository;

    public string Archive(string borgName) => options.Repository + "::" + borgName;

    /// <summary>
    /// Starts <c>borg --log-json --lock-wait N ARGS</c>. stdin is a pipe; close it if borg should read nothing.
    /// <paramref name="reader"/> commands (list, extract, export-tar with --bypass-lock) get a cache directory of their
    /// own: borg locks its cache directory even for them, and a backup holds that lock for as long as it writes.
    /// </summary>
    public BorgProcess Start(IEnumerable<string> arguments, string what, bool reader = false)
    {
        Directory.CreateDirectory(BaseDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var startInfo = new ProcessStartInfo(options.BorgPath)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = BaseDirectory,
        };
        startInfo.ArgumentList.Add("--log-json");
        startInfo.ArgumentList.Add("--lock-wait");
        startInfo.ArgumentList.Add(options.LockWaitSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
        foreach (string argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }
        startInfo.Environment.Clear();
        foreach ((string key, string value) in ChildEnvironment())
        {
            startInfo.Environment[key] = value;
        }
        if (reader)
        {
            startInfo.Environment["BORG_CACHE_DIR"] = Path.Join(BaseDirectory, "reader-cache");
        }
        return BorgProcess.Start(startInfo, what);
    }

    /// <summary>Runs a command that reads nothing and returns its stdout (JSON for --json commands).</summary>
    public async Task<string> RunAsync(IEnumerable<string> arguments, string what, CancellationToken cancellationToken, bool reader = false)
    {
        await using BorgProcess borg = Start(arguments, what, reader);
        borg.StandardInput.Close();
        return await borg.ReadOutputAsync(cancellationToken);
    }

    public async Task<JsonDocument> RunJsonAsync(IEnumerable<string> arguments, string what, CancellationToken cancellationToken,
        bool reader = false)
    {
        string output = await RunAsync(arguments, what, cancellationToken, reader);
        try
        {
            return JsonDocument.Parse(output);
        }
        catch (JsonException e)
        {
            throw new BorgException($"borg {what} printed output that is not JSON: {e.Message}", 0, null);
        }
    }

    /// <summary>The id borg records as the owner of its locks (BORG_HOST_ID).</summary>
    public static string HostId { get; } = Environment.MachineName + "@grpc-backup";

    /// <summary>Borg's own state (keys cache, chunk index, security dir) lives under the provider's state directory.</summary>
    public string BaseDirectory => Path.Join(options.StateDirectory, "borg");

    private IEnumerable<(string, string)> ChildEnvironment()
    {
        yield return ("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        yield return ("HOME", BaseDirectory);
        yield return ("LANG", "C.UTF-8");
        yield return ("BORG_BASE_DIR", BaseDirectory);
        // A fixed lock owner id, so StaleLockInspector recognises this host's locks whatever borg thinks its FQDN is.
        yield return ("BORG_HOST_ID", HostId);
        // Borg 1.2 itself removes a lock of a dead process of this host unless told the host id is not unique. Without
        // --break-stale-locks that is the operator's decision (StaleLockInspector), so borg must not take it: the
        // inspector and borg look at different moments, and a killed borg reaped in between lost its lock silently.
        yield return ("BORG_HOSTNAME_IS_UNIQUE", options.BreakStaleLocks ? "yes" : "no");
        // Never answer borg's safety prompts with yes on the operator's behalf.
        yield return ("BORG_RELOCATED_REPO_ACCESS_IS_OK", "no");
        yield return ("BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK", "no");
        yield return ("BORG_CHECK_I_KNOW_WHAT_I_AM_DOING", "NO");
        yield return ("BORG_DELETE_I_KNOW_WHAT_I_AM_DOING", "NO");
        yield return ("BORG_DISPLAY_PASSPHRASE", "no");
        yield return options.PassphraseFile is { } passphrase
            ? ("BORG_PASSCOMMAND", "cat " + passphrase)
            // No prompt without a terminal: an encrypted repository then fails clearly with PassphraseWrong.
            : ("BORG_PASSPHRASE", "");
        if (options.IsRemote)
        {
            var rsh = new List<string> { "ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes" };
            if (options.SshKeyFile is { } key)
            {
                rsh.AddRange(["-o", "IdentitiesOnly=yes", "-i", key]);
            }
            if (options.SshKnownHostsFile is { } knownHosts)
            {
                rsh.AddRange(["-o", "UserKnownHostsFile=" + knownHosts]);
            }
            yield return ("BORG_RSH", string.Join(' ', rsh));
        }
    }
}
