using System.Diagnostics;
using Grpc.Backup.Containers.Internal;

namespace Grpc.Backup.Containers;

/// <summary>
/// A program to run as the container's root inside a <see cref="UserNamespace"/> (host root in its private mount
/// namespace for a privileged map). Built as an argument list for <c>nsenter</c>: no shell ever parses a path.
/// </summary>
public sealed class UserNamespaceCommand
{
    private readonly UserNamespace _namespace;

    public UserNamespaceCommand(UserNamespace userNamespace, string fileName, IEnumerable<string> arguments)
    {
        ArgumentNullException.ThrowIfNull(userNamespace);
        ArgumentException.ThrowIfNullOrEmpty(fileName);
        ArgumentNullException.ThrowIfNull(arguments);
        _namespace = userNamespace;
        FileName = fileName;
        Arguments = [.. arguments];
    }

    /// <summary>The program, looked up in PATH inside the namespace (same file system view as the host).</summary>
    public string FileName { get; }

    public IReadOnlyList<string> Arguments { get; }

    /// <summary>
    /// A start info with stdin, stdout and stderr redirected and the C locale. nsenter execs the program in place, so
    /// the process started is the program itself (killing it kills the program).
    /// </summary>
    public ProcessStartInfo CreateStartInfo() =>
        ProcessRunner.CreateStartInfo("nsenter", _namespace.NsenterArguments(asHostRoot: false, FileName, Arguments));

    /// <summary>Starts the program.</summary>
    public Process Start() => Process.Start(CreateStartInfo()) ?? throw new InvalidOperationException($"could not start nsenter for {FileName}");

    public override string ToString() => string.Join(' ', [FileName, .. Arguments]);
}
