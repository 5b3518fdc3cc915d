namespace Grpc.Backup.Nbd.Tests.Fuzzing;

/// <summary>Something the guard (or QEMU behind it) did that the oracle forbids.</summary>
internal sealed class FuzzViolation : Exception
{
    public FuzzViolation()
    {
    }

    public FuzzViolation(string message)
        : base(message)
    {
    }

    public FuzzViolation(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
