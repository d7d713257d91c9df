namespace VqVaeCuda.Data;

/// <summary>How the synthetic shapes are painted (<see cref="SyntheticShapes"/>). Both styles draw the same shapes.</summary>
public enum ShapeStyle
{
    /// <summary>
    /// A white shape on a black background (data set <c>shapes</c>, the default). Geometry is all there is to learn, so a
    /// prior small enough to train in two minutes on two CPU cores draws every class recognisably.
    /// </summary>
    Plain,

    /// <summary>
    /// A random grey level or colour on a flat or gently graded background of contrasting tone (data set
    /// <c>shapes-varied</c>). Harder: the prior must also keep tones and gradients consistent across the code map,
    /// and the pipeline's default budget then draws circles, boxes and rings but leaves stars, triangles and diamonds blobs.
    /// </summary>
    Varied,
}
