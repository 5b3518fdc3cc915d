namespace Grpc.Backup.Bench;

/// <summary>A measure's fleecing and runtime directories under its work directory, created.</summary>
internal static class BenchDirectories
{
    public static (string Fleece, string Runtime) Create(string work)
    {
        string fleece = Directory.CreateDirectory(Path.Combine(work, "fleece")).FullName;
        string runtime = Directory.CreateDirectory(Path.Combine(work, "run")).FullName;
        return (fleece, runtime);
    }
}
