namespace VqVaeCuda.Data;

/// <summary>The kinds of shape <see cref="SyntheticShapes"/> draws; an image's label is its kind.</summary>
public enum ShapeKind
{
    /// <summary>A filled disc.</summary>
    Circle,
    /// <summary>A filled rectangle, slightly rotated.</summary>
    Rectangle,
    /// <summary>A filled, irregular triangle at any rotation.</summary>
    Triangle,
    /// <summary>An annulus (disc with a concentric hole).</summary>
    Ring,
    /// <summary>A plus sign, slightly rotated.</summary>
    Cross,
    /// <summary>A rhombus standing on a vertex, slightly rotated.</summary>
    Diamond,
    /// <summary>An elongated ellipse at any rotation.</summary>
    Ellipse,
    /// <summary>A five-pointed star at any rotation.</summary>
    Star,
}
