namespace Grpc.Backup.Providers.Directory;

/// <summary>Where the directory provider keeps its backups: <c>--repository PATH</c> or <c>BACKUP_DIRECTORY_REPOSITORY</c>.</summary>
public sealed record DirectoryRepositoryOptions(string RepositoryPath)
{
    public const string EnvironmentVariable = "BACKUP_DIRECTORY_REPOSITORY";

    public static DirectoryRepositoryOptions FromConfiguration(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        string? path = configuration["repository"] ?? Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (string.IsNullOrEmpty(path) || !Path.IsPathFullyQualified(path))
        {
            throw new InvalidOperationException(
                $"the directory provider needs an absolute repository path: --repository PATH or {EnvironmentVariable}");
        }
        return new DirectoryRepositoryOptions(path);
    }
}
