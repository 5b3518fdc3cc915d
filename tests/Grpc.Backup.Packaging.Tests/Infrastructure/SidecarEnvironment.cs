namespace Grpc.Backup.Packaging.Tests.Infrastructure;

/// <summary>
/// What systemd gives a service of the units here, re-rooted: its account, its directories and the environment it sets
/// (the variables systemd sets for <c>User=</c>, <c>StateDirectory=</c>, <c>RuntimeDirectory=</c> and credentials, and
/// the unit's own <c>Environment=</c> lines).
/// </summary>
internal sealed record SidecarEnvironment(string Root, ServiceAccount Account, string? StateDirectory, string? RuntimeDirectory,
    string? CredentialsDirectory)
{
    public IEnumerable<(string Name, string Value)> Variables(SystemdUnit serviceUnit)
    {
        yield return ("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        yield return ("USER", Account.Name);
        yield return ("LOGNAME", Account.Name);
        // The packaged users' home (sysusers.d) is their state directory.
        yield return ("HOME", StateDirectory ?? "/");
        if (StateDirectory is not null)
        {
            yield return ("STATE_DIRECTORY", StateDirectory);
        }
        if (RuntimeDirectory is not null)
        {
            yield return ("RUNTIME_DIRECTORY", RuntimeDirectory);
        }
        if (CredentialsDirectory is not null)
        {
            yield return ("CREDENTIALS_DIRECTORY", CredentialsDirectory);
        }
        foreach (string assignment in serviceUnit.All("Service", "Environment"))
        {
            int equals = assignment.IndexOf('=', StringComparison.Ordinal);
            yield return (assignment[..equals], assignment[(equals + 1)..]);
        }
    }
}
