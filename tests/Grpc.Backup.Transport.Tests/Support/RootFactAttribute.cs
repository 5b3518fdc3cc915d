namespace Grpc.Backup.Transport.Tests.Support;

/// <summary>A fact that needs root (to run a client as another uid) and Debian's python3 and setpriv.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class RootFactAttribute : FactAttribute
{
    public RootFactAttribute()
    {
        if (TestInterop.geteuid() != 0)
        {
            Skip = "needs root to run a client under another uid";
        }
        else if (!File.Exists(PythonClient.Python) || !File.Exists(PythonClient.Setpriv))
        {
            Skip = $"needs {PythonClient.Python} and {PythonClient.Setpriv}";
        }
    }
}
