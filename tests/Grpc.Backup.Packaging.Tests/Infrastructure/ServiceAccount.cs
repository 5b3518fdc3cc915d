using System.Globalization;

namespace Grpc.Backup.Packaging.Tests.Infrastructure;

/// <summary>
/// The unprivileged account a unit's <c>User=</c> names, as this machine knows it: the packaged user when it exists
/// (build/install created it), else nobody, which is as unprivileged and exists everywhere.
/// </summary>
internal sealed record ServiceAccount(string Name, int Uid, int Gid)
{
    public static readonly ServiceAccount Nobody = new("nobody", 65534, 65534);

    public static async Task<ServiceAccount> ResolveAsync(string user)
    {
        (int exit, string stdout, _) = await ChildProcess.RunAsync("getent", ["passwd", user]);
        if (exit != 0)
        {
            return Nobody;
        }
        string[] fields = stdout.Trim().Split(':');
        return new ServiceAccount(user, int.Parse(fields[2], CultureInfo.InvariantCulture), int.Parse(fields[3], CultureInfo.InvariantCulture));
    }

    public string Owner => $"{Uid}:{Gid}";
}
