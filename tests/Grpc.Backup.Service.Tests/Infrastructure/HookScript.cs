namespace Grpc.Backup.Service.Tests.Infrastructure;

/// <summary>A hook script (root-owned, 0755) that appends "epoch-ms phase guest STOREID TARGET LOGFILE" per call to a file.</summary>
internal static class HookScript
{
    public static string Create(string directory, string logPath)
    {
        string path = Path.Combine(directory, "hook.sh");
        File.WriteAllText(path, $$"""
            #!/bin/sh
            echo "$(date +%s%3N) $1 ${3:-job} $STOREID ${TARGET:--} ${LOGFILE:--} $HOSTNAME" >> {{logPath}}
            echo "hook saw $1"
            """.Replace("\r", "", StringComparison.Ordinal) + "\n");
        File.SetUnixFileMode(path, (UnixFileMode)0b111_101_101);
        return path;
    }

    public static IReadOnlyList<HookCall> Read(string logPath) => File.Exists(logPath)
        ? [.. File.ReadAllLines(logPath).Select(l => l.Split(' ')).Select(w => new HookCall(long.Parse(w[0], System.Globalization.CultureInfo.InvariantCulture), w[1], w[2], w[3], w[4], w[5], w[6]))]
        : [];
}
